"""Writes the summary fixtures: every table in ../../../shared/seeds/, as Keras printed it.

The seed texts were extracted from PDFs: their tables lost their spacing, some class names are
cut (``batchnormalization_1 (BatchNorma``) and OCR split some cells. The layers themselves (names,
classes, shapes, parameter counts, totals) are all recoverable; they are transcribed below, once,
and this script lays each table out the way its Keras generation laid it out:

* Keras 1.2: 100 columns at 33/55/67, "Connected to" always, ``_`` rules between rows;
* Keras 2.0-2.2 and tf.keras up to 2.8: 65 columns at 29/55 (98 at 32/53/65 with "Connected
  to"), the ``name (Class)`` cell cut at the column edge;
* tf.keras 2.9-2.12: cells wrap onto further lines instead of being cut, blank lines between
  rows.

Each fixture ``<name>.txt`` comes with ``<name>.expected.json`` (the transcription, full class
names) and, when the seed text is usable, ``<name>.seed.txt`` (the lines as the seed shows
them). Run from the repository root: ``python tests/data/summaries/make_fixtures.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEEDS = HERE.parents[3] / "shared" / "seeds"


def keras1_chain(rows, first_input):
    """Keras 1 Sequential rows: each layer is connected to the one before it."""
    out, previous = [], first_input
    for name, cls, shape, params in rows:
        out.append((name, cls, shape, params, [f"{previous}[0][0]"]))
        previous = name
    return out


# (name, class, output shape, params) per row; Keras 1 rows get their "Connected to" added.
MNIST_CNN2 = [
    ("convolution2d_1", "Convolution2D", (None, 28, 28, 32), 320),
    ("batchnormalization_1", "BatchNormalization", (None, 28, 28, 32), 128),
    ("activation_1", "Activation", (None, 28, 28, 32), 0),
    ("convolution2d_2", "Convolution2D", (None, 28, 28, 32), 9248),
    ("batchnormalization_2", "BatchNormalization", (None, 28, 28, 32), 128),
    ("activation_2", "Activation", (None, 28, 28, 32), 0),
    ("maxpooling2d_1", "MaxPooling2D", (None, 14, 14, 32), 0),
    ("convolution2d_3", "Convolution2D", (None, 14, 14, 64), 18496),
    ("batchnormalization_3", "BatchNormalization", (None, 14, 14, 64), 256),
    ("activation_3", "Activation", (None, 14, 14, 64), 0),
    ("convolution2d_4", "Convolution2D", (None, 14, 14, 64), 36928),
    ("batchnormalization_4", "BatchNormalization", (None, 14, 14, 64), 256),
    ("activation_4", "Activation", (None, 14, 14, 64), 0),
    ("maxpooling2d_2", "MaxPooling2D", (None, 7, 7, 64), 0),
    ("flatten_1", "Flatten", (None, 3136), 0),
    ("dense_1", "Dense", (None, 200), 627400),
    ("batchnormalization_5", "BatchNormalization", (None, 200), 800),
    ("dropout_1", "Dropout", (None, 200), 0),
    ("activation_5", "Activation", (None, 200), 0),
    ("dense_2", "Dense", (None, 10), 2010),
    ("activation_6", "Activation", (None, 10), 0),
]


def faces_cnn(dropout: bool, batchnorm: bool):
    rows = []
    counters = {"activation": 0, "dropout": 0, "bn": 0}

    def add(name, cls, shape, params):
        rows.append((name, cls, shape, params))

    def act(shape):
        counters["activation"] += 1
        add(f"activation_{counters['activation']}", "Activation", shape, 0)

    def bn(shape, params):
        if batchnorm:
            counters["bn"] += 1
            add(f"batchnormalization_{counters['bn']}", "BatchNormalization", shape, params)

    def drop(shape):
        if dropout:
            counters["dropout"] += 1
            add(f"dropout_{counters['dropout']}", "Dropout", shape, 0)

    add("convolution2d_1", "Convolution2D", (None, 48, 48, 32), 896)
    bn((None, 48, 48, 32), 128)
    act((None, 48, 48, 32))
    add("convolution2d_2", "Convolution2D", (None, 48, 48, 32), 9248)
    bn((None, 48, 48, 32), 128)
    act((None, 48, 48, 32))
    add("maxpooling2d_1", "MaxPooling2D", (None, 24, 24, 32), 0)
    drop((None, 24, 24, 32))
    add("convolution2d_3", "Convolution2D", (None, 24, 24, 64), 18496)
    bn((None, 24, 24, 64), 256)
    act((None, 24, 24, 64))
    add("convolution2d_4", "Convolution2D", (None, 24, 24, 64), 36928)
    bn((None, 24, 24, 64), 256)
    act((None, 24, 24, 64))
    add("maxpooling2d_2", "MaxPooling2D", (None, 12, 12, 64), 0)
    drop((None, 12, 12, 64))
    add("flatten_1", "Flatten", (None, 9216), 0)
    add("dense_1", "Dense", (None, 200), 1843400)
    bn((None, 200), 800)
    act((None, 200))
    drop((None, 200))
    add("dense_2", "Dense", (None, 8), 1608)
    act((None, 8))
    return rows


VGG16_BASE = [
    ("input_2", "InputLayer", (None, 150, 150, 3), 0),
    ("block1_conv1", "Conv2D", (None, 150, 150, 64), 1792),
    ("block1_conv2", "Conv2D", (None, 150, 150, 64), 36928),
    ("block1_pool", "MaxPooling2D", (None, 75, 75, 64), 0),
    ("block2_conv1", "Conv2D", (None, 75, 75, 128), 73856),
    ("block2_conv2", "Conv2D", (None, 75, 75, 128), 147584),
    ("block2_pool", "MaxPooling2D", (None, 37, 37, 128), 0),
    ("block3_conv1", "Conv2D", (None, 37, 37, 256), 295168),
    ("block3_conv2", "Conv2D", (None, 37, 37, 256), 590080),
    ("block3_conv3", "Conv2D", (None, 37, 37, 256), 590080),
    ("block3_pool", "MaxPooling2D", (None, 18, 18, 256), 0),
    ("block4_conv1", "Conv2D", (None, 18, 18, 512), 1180160),
    ("block4_conv2", "Conv2D", (None, 18, 18, 512), 2359808),
    ("block4_conv3", "Conv2D", (None, 18, 18, 512), 2359808),
    ("block4_pool", "MaxPooling2D", (None, 9, 9, 512), 0),
    ("block5_conv1", "Conv2D", (None, 9, 9, 512), 2359808),
    ("block5_conv2", "Conv2D", (None, 9, 9, 512), 2359808),
    ("block5_conv3", "Conv2D", (None, 9, 9, 512), 2359808),
    ("block5_pool", "MaxPooling2D", (None, 4, 4, 512), 0),
]
VGG16_TOP = [
    ("vgg16", "Model", (None, 4, 4, 512), 14714688),
    ("flatten_1", "Flatten", (None, 8192), 0),
    ("dense_1", "Dense", (None, 256), 2097408),
    ("dense_2", "Dense", (None, 1), 257),
]
CIFAR_MODEL_2 = [
    ("input_3", "InputLayer", [(None, 32, 32, 3)], 0),
    ("conv2d", "Conv2D", (None, 28, 28, 32), 2432),
    ("max_pooling2d", "MaxPooling2D", (None, 14, 14, 32), 0),
    ("conv2d_1", "Conv2D", (None, 11, 11, 64), 32832),
    ("max_pooling2d_1", "MaxPooling2D", (None, 3, 3, 64), 0),
    ("conv2d_2", "Conv2D", (None, 2, 2, 120), 30840),
    ("max_pooling2d_2", "MaxPooling2D", (None, 1, 1, 120), 0),
    ("flatten_2", "Flatten", (None, 120), 0),
    ("dense_6", "Dense", (None, 120), 14520),
    ("dense_7", "Dense", (None, 10), 1210),
]

# name -> dict(layout, rows, totals, model name, seed file, seed line span, source note)
TABLES = {
    "seed000_1_fc_mnist": dict(
        layout="keras2", float_totals=True,
        rows=[
            ("dense_1", "Dense", (None, 500), 392500),
            ("batch_normalization_1", "BatchNormalization", (None, 500), 2000),
            ("activation_1", "Activation", (None, 500), 0),
            ("dropout_1", "Dropout", (None, 500), 0),
            ("dense_2", "Dense", (None, 50), 25050),
            ("batch_normalization_2", "BatchNormalization", (None, 50), 200),
            ("activation_2", "Activation", (None, 50), 0),
            ("dropout_2", "Dropout", (None, 50), 0),
            ("dense_3", "Dense", (None, 10), 510),
        ],
        totals=(420260, 419160, 1100), seed="000", span=(11, 25),
        note="OCR kept shapes, counts and totals only; no 'Connected to' column and float "
             "totals say Keras 2.0. The names and the kinds of the two parameter-free layers "
             "after each batch normalisation are reconstructed (Activation, then Dropout).",
    ),
    "seed000_2_cnn1_mnist": dict(
        layout="keras1",
        rows=keras1_chain([
            ("convolution2d_1", "Convolution2D", (None, 28, 28, 32), 320),
            ("activation_1", "Activation", (None, 28, 28, 32), 0),
            ("flatten_1", "Flatten", (None, 25088), 0),
            ("dense_1", "Dense", (None, 10), 250890),
            ("activation_2", "Activation", (None, 10), 0),
        ], "convolution2d_input_1"),
        totals=(251210, 251210, 0), seed="000", span=(33, 46),
        note="The seed prints 'Trainable params: 251,210' twice; the first is the total.",
    ),
    "seed000_3_cnn2_mnist": dict(
        layout="keras1", rows=keras1_chain(MNIST_CNN2, "convolution2d_input_1"),
        totals=(695970, 695186, 784), seed="000", span=(62, 89),
        note="The 'START/END OF THE MISSING LAYERS' rows are the exercise's, not Keras's.",
    ),
    "seed000_4_faces_finetune": dict(
        layout="keras1",
        rows=keras1_chain([
            ("dense_1", "Dense", (None, 400), 1638800),
            ("batchnormalization_1", "BatchNormalization", (None, 400), 1600),
            ("activation_1", "Activation", (None, 400), 0),
            ("dropout_1", "Dropout", (None, 400), 0),
            ("dense_2", "Dense", (None, 400), 160400),
            ("batchnormalization_2", "BatchNormalization", (None, 400), 1600),
            ("activation_2", "Activation", (None, 400), 0),
            ("dropout_2", "Dropout", (None, 400), 0),
            ("dense_3", "Dense", (None, 8), 3208),
            ("activation_3", "Activation", (None, 8), 0),
        ], "dense_input_1"),
        totals=(1805608, 1804008, 1600), seed="000", span=(100, 113),
    ),
    "seed001_1_model_1": dict(
        layout="tfkeras24", name="model_1",
        rows=[
            ("input_2", "InputLayer", [(None, 32, 32, 3)], 0),
            ("flatten_1", "Flatten", (None, 3072), 0),
            ("dense_3", "Dense", (None, 3072), 9440256),
            ("dense_4", "Dense", (None, 1000), 3073000),
            ("dense_5", "Dense", (None, 10), 10010),
        ],
        totals=(12523266, 12523266, 0), seed="001", span=(25, 40),
    ),
    "seed001_2_model_2": dict(
        layout="tfkeras24", name="model_2", rows=CIFAR_MODEL_2,
        totals=(81834, 81834, 0), seed="001", span=(58, 81),
    ),
    "seed001_2_model_2_tf29": dict(
        layout="tfkeras29", name="model_2", rows=CIFAR_MODEL_2,
        totals=(81834, 81834, 0), seed="001", span=None,
        note="The same table as seed001_2_model_2, as TF 2.9-2.12 printed it (wrapped cells).",
    ),
    "seed002_1_small_cnn": dict(
        layout="keras2",
        rows=[
            ("conv2d_1", "Conv2D", (None, 148, 148, 32), 896),
            ("max_pooling2d_1", "MaxPooling2D", (None, 74, 74, 32), 0),
            ("conv2d_2", "Conv2D", (None, 72, 72, 64), 18496),
            ("max_pooling2d_2", "MaxPooling2D", (None, 36, 36, 64), 0),
            ("conv2d_3", "Conv2D", (None, 34, 34, 128), 73856),
            ("max_pooling2d_3", "MaxPooling2D", (None, 17, 17, 128), 0),
            ("conv2d_4", "Conv2D", (None, 15, 15, 128), 147584),
            ("max_pooling2d_4", "MaxPooling2D", (None, 7, 7, 128), 0),
            ("flatten_1", "Flatten", (None, 6272), 0),
            ("dense_1", "Dense", (None, 512), 3211776),
            ("dense_2", "Dense", (None, 1), 513),
        ],
        totals=(3453121, 3453121, 0), seed="002", span=(134, 150),
    ),
    "seed002_2_vgg16_base": dict(
        layout="keras2", rows=VGG16_BASE, totals=(14714688, 14714688, 0),
        seed="002", span=(648, 671),
    ),
    "seed002_3_vgg16_top": dict(
        layout="keras2", rows=VGG16_TOP, totals=(16812353, 16812353, 0),
        seed="002", span=(707, 717),
    ),
    "seed002_4_vgg16_top_frozen": dict(
        layout="keras2", rows=VGG16_TOP, totals=(16812353, 2097665, 14714688),
        seed="002", span=(733, 740),
    ),
    "seed002_5_vgg16_base_finetune": dict(
        layout="keras2", rows=VGG16_BASE, totals=(14714688, 14714688, 0),
        seed="002", span=(759, 782),
    ),
    "seed002_6_vgg16_top_finetune": dict(
        layout="keras2", rows=VGG16_TOP, totals=(16812353, 9177089, 7635264),
        seed="002", span=(808, 816),
    ),
    "seed002_7_alexnet": dict(
        layout="keras2", float_totals=True,
        rows=[
            ("input_2", "InputLayer", (None, 227, 227, 3), 0),
            ("conv2d_6", "Conv2D", (None, 55, 55, 96), 34944),
            ("max_pooling2d_4", "MaxPooling2D", (None, 27, 27, 96), 0),
            ("batch_normalization_3", "BatchNormalization", (None, 27, 27, 96), 384),
            ("zero_padding2d_5", "ZeroPadding2D", (None, 31, 31, 96), 0),
            ("conv2d_7", "Conv2D", (None, 27, 27, 256), 614656),
            ("max_pooling2d_5", "MaxPooling2D", (None, 13, 13, 256), 0),
            ("batch_normalization_4", "BatchNormalization", (None, 13, 13, 256), 1024),
            ("zero_padding2d_6", "ZeroPadding2D", (None, 15, 15, 256), 0),
            ("conv2d_8", "Conv2D", (None, 13, 13, 384), 885120),
            ("zero_padding2d_7", "ZeroPadding2D", (None, 15, 15, 384), 0),
            ("conv2d_9", "Conv2D", (None, 13, 13, 384), 1327488),
            ("zero_padding2d_8", "ZeroPadding2D", (None, 15, 15, 384), 0),
            ("conv2d_10", "Conv2D", (None, 13, 13, 256), 884992),
            ("max_pooling2d_6", "MaxPooling2D", (None, 6, 6, 256), 0),
            ("flatten_2", "Flatten", (None, 9216), 0),
            ("dense_3", "Dense", (None, 4096), 37752832),
            ("dropout_3", "Dropout", (None, 4096), 0),
            ("dense_4", "Dense", (None, 4096), 16781312),
            ("dropout_4", "Dropout", (None, 4096), 0),
            ("dense_5", "Dense", (None, 100), 409700),
        ],
        totals=(58692452, 58691748, 704), seed="002", span=(1117, 1143),
        note="OCR wrote '(Batch Normalization)'; Keras 2.0 cut the cell to "
             "'batch_normalization_3 (Batch'.",
    ),
    "seed004_1_faces_fc": dict(
        layout="keras1",
        rows=keras1_chain([
            ("dense_1", "Dense", (None, 8), 55304),
            ("activation_1", "Activation", (None, 8), 0),
        ], "dense_input_1"),
        totals=(55304, 55304, 0), seed="004", span=(8, 18),
    ),
    "seed004_2_faces_fc_hidden": dict(
        layout="keras1",
        rows=keras1_chain([
            ("dense_1", "Dense", (None, 400), 2765200),
            ("activation_1", "Activation", (None, 400), 0),
            ("dense_2", "Dense", (None, 200), 80200),
            ("activation_2", "Activation", (None, 200), 0),
            ("dense_3", "Dense", (None, 8), 1608),
            ("activation_3", "Activation", (None, 8), 0),
        ], "dense_input_1"),
        totals=(2847008, 2847008, 0), seed="004", span=(22, 40),
    ),
    "seed004_3_faces_cnn": dict(
        layout="keras1", rows=keras1_chain(faces_cnn(False, False), "convolution2d_input_1"),
        totals=(1910576, 1910576, 0), seed="004", span=(47, 83),
    ),
    "seed004_4_faces_cnn_dropout": dict(
        layout="keras1", rows=keras1_chain(faces_cnn(True, False), "convolution2d_input_1"),
        totals=(1910576, 1910576, 0), seed="004", span=(87, 129),
    ),
    "seed004_5_faces_cnn_bn": dict(
        layout="keras1", rows=keras1_chain(faces_cnn(True, True), "convolution2d_input_1"),
        totals=(1912144, 1911360, 784), seed="004", span=(133, 185),
    ),
}


# ---------------------------------------------------------------------------------------------
# Layouts


def shape_text(shape) -> str:
    return str(list(shape)) if isinstance(shape, list) else str(tuple(shape))


def cut_row(fields, positions) -> str:
    """Keras 1/2: each field starts at its column; what does not fit is cut off."""
    line = ""
    for i, text in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += str(text)
        line = line[: positions[i]]
        line += " " * (positions[i] - len(line))
    return line


def wrap_row(fields, positions) -> list[str]:
    """tf.keras 2.9: what does not fit continues on the next line, in the same column."""
    left = [str(x) for x in fields]
    lines = []
    while any(left):
        line = ""
        for col in range(len(left)):
            start = positions[col - 1] if col else 0
            space = 2 if col != len(positions) - 1 else 0
            cutoff = positions[col] - start - space
            piece = left[col][:cutoff]
            breaks = [piece.find(x) + len(x) for x in ("),", "},", "],", "',") if piece.find(x) >= 0]
            if breaks:
                cutoff = min(breaks)
                piece = piece[:cutoff]
            if col == 0:
                line += " "
            line += piece + (" " * space if space else "")
            left[col] = left[col][cutoff:]
            line += " " * (positions[col] - len(line))
        lines.append(line)
    return lines


def count(value: int, as_float: bool) -> str:
    return "{:,}".format(float(value) if as_float else value)


def render(table: dict) -> str:
    rows = table["rows"]
    layout = table["layout"]
    connected = layout == "keras1"
    total, trainable, non_trainable = table["totals"]
    floats = table.get("float_totals", False)
    out: list[str] = []
    if layout == "keras1":
        width, positions = 100, [33, 55, 67, 100]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    else:
        width, positions = 65, [29, 55, 65]
        header = ["Layer (type)", "Output Shape", "Param #"]
    if table.get("name"):
        out.append(f'Model: "{table["name"]}"')
    out.append("_" * width)
    if layout == "tfkeras29":
        out.extend(wrap_row(header, positions))
    else:
        out.append(cut_row(header, positions))
    out.append("=" * width)
    for i, row in enumerate(rows):
        name, cls, shape, params = row[:4]
        fields = [f"{name} ({cls})", shape_text(shape), params]
        if connected:
            inbound = row[4]
            fields.append(inbound[0] if inbound else "")
        if layout == "tfkeras29":
            out.extend(wrap_row(fields, positions))
        else:
            out.append(cut_row(fields, positions))
            if connected:
                for extra in row[4][1:]:
                    out.append(cut_row(["", "", "", extra], positions))
        last = i == len(rows) - 1
        if layout == "tfkeras29":
            out.append("=" * width if last else " " * width)
        else:
            out.append(("=" if last else "_") * width)
    out.append(f"Total params: {count(total, floats)}")
    out.append(f"Trainable params: {count(trainable, floats)}")
    out.append(f"Non-trainable params: {count(non_trainable, floats)}")
    out.append("_" * width)
    return "\n".join(out) + "\n"


def expected(table: dict, key: str) -> dict:
    rows = table["rows"]
    inputs = [row for row in rows if row[1] == "InputLayer"]
    layers = [row for row in rows if row[1] != "InputLayer"]
    total, trainable, non_trainable = table["totals"]
    assert sum(row[3] for row in layers) == total, f"{key}: rows do not add up to the total"
    assert trainable + non_trainable == total, f"{key}: totals do not add up"

    def shape_list(shape):
        shape = shape[0] if isinstance(shape, list) else shape
        return list(shape)

    return {
        "source": f"shared/seeds/{table['seed']}_*.txt",
        "note": table.get("note", ""),
        "generation": "keras1" if table["layout"] == "keras1" else "keras2",
        "name": table.get("name", ""),
        "total_params": total,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "input_shape": shape_list(inputs[0][2]) if inputs else None,
        "layers": [[name, cls, shape_list(shape), params] for name, cls, shape, params, *_ in layers],
    }


def main() -> None:
    for key, table in TABLES.items():
        (HERE / f"{key}.txt").write_text(render(table))
        (HERE / f"{key}.expected.json").write_text(json.dumps(expected(table, key), indent=1) + "\n")
        span = table.get("span")
        if span:
            seed = next(SEEDS.glob(f"{table['seed']}_*.txt"))
            lines = seed.read_text().split("\n")[span[0] - 1: span[1]]
            (HERE / f"{key}.seed.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(TABLES)} tables to {HERE}")


if __name__ == "__main__":
    main()
