"""model.summary() tables of every Keras generation (grader.static.summary).

The seed tables live in tests/data/summaries/: ``<name>.txt`` is the table as its Keras version
printed it, ``<name>.expected.json`` the layers transcribed from the seed, ``<name>.seed.txt``
the lines as the (PDF-extracted) seed shows them. See make_fixtures.py there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.static.summary import canonical_class, complete_class, parse_shape, parse_summary

DATA = Path(__file__).parent / "data" / "summaries"
EXPECTED = sorted(DATA.glob("*.expected.json"))
# Seed 000's tables were OCR'd into markdown pipes, with cells split mid-shape: only their
# reconstructions are test cases.
MANGLED_SEEDS = {"seed000_1_fc_mnist", "seed000_2_cnn1_mnist", "seed000_3_cnn2_mnist",
                 "seed000_4_faces_finetune"}


def _key(path: Path) -> str:
    return path.name[: -len(".expected.json")]


def _layers(summary):
    return [[layer.name, layer.class_name, layer.output_shape, layer.params]
            for layer in summary.architecture.layers]


def _assert_matches(summary, expected):
    assert _layers(summary) == expected["layers"]
    architecture = summary.architecture
    assert architecture.total_params == expected["total_params"]
    assert architecture.trainable_params == expected["trainable_params"]
    assert architecture.non_trainable_params == expected["non_trainable_params"]
    assert architecture.input_shape == expected["input_shape"]


def test_every_seed_table_has_a_fixture():
    assert len(EXPECTED) == 19  # 18 seed tables + seed 001's model_2 as TF 2.9 printed it


@pytest.mark.parametrize("expected_path", EXPECTED, ids=_key)
def test_seed_table_parses_layer_by_layer(expected_path):
    expected = json.loads(expected_path.read_text())
    (summary,) = parse_summary((DATA / f"{_key(expected_path)}.txt").read_text())
    _assert_matches(summary, expected)
    assert summary.problems == []
    assert summary.generation == expected["generation"]
    assert summary.architecture.name == expected["name"]


@pytest.mark.parametrize(
    "expected_path",
    [p for p in EXPECTED if (DATA / f"{_key(p)}.seed.txt").exists() and _key(p) not in MANGLED_SEEDS],
    ids=_key,
)
def test_seed_text_as_extracted_from_the_pdf_parses_too(expected_path):
    """Tabs or collapsed spaces instead of columns, blank lines, '(Batch Normalization)'."""
    expected = json.loads(expected_path.read_text())
    (summary,) = parse_summary((DATA / f"{_key(expected_path)}.seed.txt").read_text())
    _assert_matches(summary, expected)


@pytest.mark.parametrize("key", sorted(MANGLED_SEEDS - {"seed000_1_fc_mnist"}))
def test_ocr_mangled_table_gives_no_layers_and_says_why(key):
    summaries = parse_summary((DATA / f"{key}.seed.txt").read_text())
    assert summaries, "the header is found"
    assert all(s.problems for s in summaries)
    assert all(not s.architecture.layers for s in summaries)


def test_keras1_cut_class_names_are_completed():
    (summary,) = parse_summary((DATA / "seed004_5_faces_cnn_bn.txt").read_text())
    assert "batchnormalization_1 (BatchNorma " in (DATA / "seed004_5_faces_cnn_bn.txt").read_text()
    assert summary.architecture.layers[1].class_name == "BatchNormalization"


def test_keras1_sequential_is_recognised_by_its_generated_input_name():
    (summary,) = parse_summary((DATA / "seed000_3_cnn2_mnist.txt").read_text())
    assert summary.architecture.class_name == "Sequential"
    assert summary.generation == "keras1"


def test_keras2_float_totals_are_read():
    (summary,) = parse_summary((DATA / "seed002_7_alexnet.txt").read_text())
    assert summary.architecture.total_params == 58_692_452
    assert summary.architecture.non_trainable_params == 704


def test_nested_model_is_one_layer():
    (summary,) = parse_summary((DATA / "seed002_4_vgg16_top_frozen.txt").read_text())
    vgg = summary.architecture.layers[0]
    assert (vgg.name, vgg.class_name, vgg.params) == ("vgg16", "Model", 14_714_688)
    assert canonical_class(vgg.class_name) == "Functional"
    assert summary.architecture.non_trainable_params == 14_714_688


def test_tf29_wrapped_cells_are_joined():
    (summary,) = parse_summary((DATA / "seed001_2_model_2_tf29.txt").read_text())
    assert [layer.class_name for layer in summary.architecture.layers][:4] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D"]


def test_several_tables_in_one_text_come_back_in_order():
    text = "".join((DATA / f"{name}.txt").read_text() + "some prose\n" for name in
                   ("seed004_1_faces_fc", "seed001_1_model_1", "seed002_3_vgg16_top"))
    totals = [s.architecture.total_params for s in parse_summary(text)]
    assert totals == [55_304, 12_523_266, 16_812_353]


def test_derived_config_gives_units_filters_and_kernel_size():
    (summary,) = parse_summary((DATA / "seed001_2_model_2.txt").read_text())
    conv, _, conv_1, *_ = summary.architecture.layers
    assert conv.config == {"filters": 32, "kernel_size": [5, 5]}
    assert conv_1.config == {"filters": 64, "kernel_size": [4, 4]}
    dense = summary.architecture.layers[-1]
    assert dense.config == {"units": 10, "input_dim": 120}


KERAS3_BOX = """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 28, 28, 32)     │         2,432 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ batch_normalization             │ (None, 28, 28, 32)     │           128 │
│ (BatchNormalization)            │                        │               │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 5,688 (22.22 KB)
 Trainable params: 2,496 (9.75 KB)
 Non-trainable params: 64 (256.00 B)
 Optimizer params: 3,128 (12.22 KB)
"""


def test_keras3_box_table_with_wrapped_class_name():
    (summary,) = parse_summary(KERAS3_BOX)
    assert _layers(summary) == [["conv2d", "Conv2D", [None, 28, 28, 32], 2432],
                                ["batch_normalization", "BatchNormalization",
                                 [None, 28, 28, 32], 128]]
    assert summary.generation == "keras3"


def test_keras3_total_after_fit_leaves_the_optimizer_out():
    (summary,) = parse_summary(KERAS3_BOX)
    assert summary.architecture.total_params == 2_560
    assert summary.optimizer_params == 3_128
    assert summary.problems == []


def test_keras3_unbuilt_layers_have_no_shape_and_no_params():
    text = KERAS3_BOX.replace("(None, 28, 28, 32)    ", "?                     ").replace(
        "        2,432 │", "  0 (unbuilt) │")
    (summary,) = parse_summary(text)
    assert summary.architecture.layers[0].output_shape is None
    assert summary.architecture.layers[0].params == 0


def test_sum_of_rows_that_contradicts_the_total_is_a_problem():
    text = (DATA / "seed004_1_faces_fc.txt").read_text().replace("55304", "55305", 1)
    (summary,) = parse_summary(text)
    assert any("add up to 55,305" in problem for problem in summary.problems)


def test_table_without_totals_still_gives_its_layers_and_a_problem():
    text = "\n".join((DATA / "seed004_2_faces_fc_hidden.txt").read_text().split("\n")[:12])
    (summary,) = parse_summary(text)
    assert [layer.name for layer in summary.architecture.layers][:2] == ["dense_1", "activation_1"]
    assert any("Total params" in problem for problem in summary.problems)


def test_text_without_tables_gives_nothing():
    assert parse_summary("Total params: 3,453,121\nLayer types matter.\n") == []


def test_parse_survives_every_cut_of_a_table():
    text = (DATA / "seed000_3_cnn2_mnist.txt").read_text()
    assert parse_summary(text), "the whole table parses"  # else the cuts below would check nothing
    for end in range(0, len(text), 97):
        for summary in parse_summary(text[:end]):
            assert summary.architecture is not None


@pytest.mark.parametrize("printed, name, rank, full", [
    ("BatchNorma", "batchnormalization_1", 4, "BatchNormalization"),
    ("Batc", "batch_normalization_3", 4, "BatchNormalization"),
    ("MaxPooling2", "max_pooling2d_1", 4, "MaxPooling2D"),
    ("ZeroPaddin", "zero_padding2d_5", 4, "ZeroPadding2D"),
    ("GlobalAveragePool", "global_average_poo…", None, None),
    ("Conv2D", "conv2d", 4, "Conv2D"),
    ("MyCustomLay", "my_custom_layer", 4, None),
])
def test_complete_class(printed, name, rank, full):
    assert complete_class(printed, rank, name) == full


@pytest.mark.parametrize("old, new", [
    ("Convolution2D", "Conv2D"), ("Convolution1D", "Conv1D"), ("Deconvolution2D", "Conv2DTranspose"),
    ("AtrousConvolution2D", "Conv2D"), ("MaxPooling2D", "MaxPooling2D"), ("Dense", "Dense"),
    ("Model", "Functional"), ("MaxPool2D", "MaxPooling2D"), ("CuDNNLSTM", "LSTM"),
    ("MyLayer", "MyLayer"),
])
def test_canonical_class_maps_every_generation_to_keras3(old, new):
    assert canonical_class(old) == new


@pytest.mark.parametrize("text, shape", [
    ("(None, 28, 28, 32)", [None, 28, 28, 32]),
    ("[(None, 32, 32, 3)]", [None, 32, 32, 3]),
    ("(None, 10)", [None, 10]),
    ("multiple", None),
    ("[(None, 10), (None, 5)]", None),
    ("?", None),
])
def test_parse_shape(text, shape):
    assert parse_shape(text)[0] == shape


def test_shape_cut_by_a_narrow_column_is_not_guessed():
    assert parse_shape("(None, None, None, 51") == (None, False)


KERAS2_FUNCTIONAL = """\
__________________________________________________________________________________________________
Layer (type)                    Output Shape         Param #     Connected to
==================================================================================================
input_1 (InputLayer)            (None, 32, 32, 3)    0
__________________________________________________________________________________________________
conv2d_1 (Conv2D)               (None, 30, 30, 8)    224         input_1[0][0]
__________________________________________________________________________________________________
conv2d_2 (Conv2D)               (None, 30, 30, 8)    224         input_1[0][0]
__________________________________________________________________________________________________
add_1 (Add)                     (None, 30, 30, 8)    0           conv2d_1[0][0]
                                                                 conv2d_2[0][0]
==================================================================================================
Total params: 448
Trainable params: 448
Non-trainable params: 0
__________________________________________________________________________________________________
"""

TF29_FUNCTIONAL = """\
Model: "model"
__________________________________________________________________________________________________
 Layer (type)                Output Shape                 Param #   Connected to
==================================================================================================
 input_1 (InputLayer)        [(None, 32, 32, 3)]          0         []

 conv2d (Conv2D)             (None, 30, 30, 8)            224       ['input_1[0][0]']

 conv2d_1 (Conv2D)           (None, 30, 30, 8)            224       ['input_1[0][0]']

 global_average_pooling2d (G  (None, 8)                   0         ['conv2d[0][0]']
 lobalAveragePooling2D)

 global_average_pooling2d_1   (None, 8)                   0         ['conv2d_1[0][0]']
 (GlobalAveragePooling2D)

 concatenate (Concatenate)   (None, 16)                   0         ['global_average_pooling2d[0][
                                                                    0]',
                                                                     'global_average_pooling2d_1[0
                                                                    ][0]']
==================================================================================================
Total params: 448
Trainable params: 448
Non-trainable params: 0
__________________________________________________________________________________________________
"""


def test_keras2_functional_table_with_a_second_inbound_line():
    (summary,) = parse_summary(KERAS2_FUNCTIONAL)
    assert _layers(summary) == [["conv2d_1", "Conv2D", [None, 30, 30, 8], 224],
                                ["conv2d_2", "Conv2D", [None, 30, 30, 8], 224],
                                ["add_1", "Add", [None, 30, 30, 8], 0]]
    assert summary.architecture.input_shape == [None, 32, 32, 3]
    assert summary.architecture.class_name == "Functional"
    assert summary.architecture.layers[0].config["kernel_size"] == [3, 3]
    assert summary.problems == []


def test_tf29_functional_table_with_wrapped_names_and_connections():
    (summary,) = parse_summary(TF29_FUNCTIONAL)
    assert [layer.class_name for layer in summary.architecture.layers] == [
        "Conv2D", "Conv2D", "GlobalAveragePooling2D", "GlobalAveragePooling2D", "Concatenate"]
    assert summary.architecture.layers[3].name == "global_average_pooling2d_1"
    assert summary.architecture.name == "model"
    assert summary.problems == []


# Keras 3 drops the columns that do not fit the line length it is given: summary(100) of a
# three-column table loses "Param #" (printed by Keras 3.15).
CLIPPED_KERAS3 = """Model: "cifar10_fc"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳
┃ Layer (type)                               ┃ Output Shape                    ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇
│ input_layer (InputLayer)                   │ (None, 32, 32, 3)               │
├────────────────────────────────────────────┼─────────────────────────────────┼
│ flatten_1 (Flatten)                        │ (None, 3072)                    │
├────────────────────────────────────────────┼─────────────────────────────────┼
│ dense_1 (Dense)                            │ (None, 3072)                    │
├────────────────────────────────────────────┼─────────────────────────────────┼
│ dense_3 (Dense)                            │ (None, 10)                      │
└────────────────────────────────────────────┴─────────────────────────────────┴
 Total params: 9,474,058 (36.14 MB)
 Trainable params: 9,474,058 (36.14 MB)
 Non-trainable params: 0 (0.00 B)
"""


def test_a_keras3_table_without_its_param_column_keeps_its_layers_and_total():
    (parsed,) = parse_summary(CLIPPED_KERAS3)
    architecture = parsed.architecture
    assert [layer.class_name for layer in architecture.layers] == ["Flatten", "Dense", "Dense"]
    assert architecture.total_params == 9_474_058 and architecture.params_known
    assert architecture.input_shape == [None, 32, 32, 3]
    assert any("Param # column is cut off" in problem for problem in parsed.problems)


def test_a_table_of_which_nothing_could_be_read_is_unknown_not_a_zero_parameter_model():
    clipped_rows = "\n".join(CLIPPED_KERAS3.split("\n")[:4] + ["│ ??? │ ??? │"] * 3)
    (parsed,) = parse_summary(clipped_rows)
    assert not parsed.architecture.params_known  # "fewer parameters than" is not assessed
    header = ("Model: \"m\"\n┏━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━┓\n"
              "┃ Layer (type)     ┃ Output Shape ┃ Param # ┃\n┡━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━┩\n")
    (parsed,) = parse_summary(header + "\n".join(["│ x │ y │ z │"] * 3))
    assert not parsed.architecture.known and not parsed.architecture.params_known


def test_layers_whose_counts_were_cut_off_are_not_reported_as_other_parameter_counts():
    from grader.model.evidence import LayerInfo
    from grader.report.layers import LayerRow

    (parsed,) = parse_summary(CLIPPED_KERAS3)
    assert not parsed.architecture.layer_params_known
    student = parsed.architecture.layers[1]
    reference = LayerInfo(name="dense", class_name="Dense", params=9_440_256)
    assert LayerRow(student, reference).status == "params"  # what a count of 0 would say
    assert LayerRow(student, reference, counts=False).status == "same"


def test_the_quick_rule_test_agrees_with_its_definition():
    """A rule line is blank, an <hr>/``` marker, or drawn only with rule characters; the first
    character decides most lines without building a set."""
    from grader.static.summary import _RULE_CHARS, _is_rule

    def by_definition(line: str) -> bool:
        stripped = line.strip()
        return not stripped or stripped.lower() in {"<hr/>", "<hr>", "```"} or set(stripped) <= _RULE_CHARS

    lines = [line for path in sorted(DATA.glob("*.txt")) for line in path.read_text(encoding="utf-8").split("\n")]
    lines += ["", "   ", "\t", "<HR/>", "<hr>", "```", "``` ", "`", "<b>", "_" * 100, "=" * 65, "-+-|", "¯¯¯",
              "━━━━┳━━━", "│ dense │", " Layer (type) ", "Total params: 1", "_x_", "=a=", "--- end ---"]
    assert len(lines) > 500
    assert [_is_rule(line) for line in lines] == [by_definition(line) for line in lines]
