"""Every requirement in the course seeds is expressible in the rubric language (issue 3, opening).

``rubric_fixtures/seed_requirements.yaml`` writes each one down; these tests check that it
validates and that the hardest requirements grade the documented architectures as expected.
"""

from grader.checks import grade
from grader.model.evidence import CompileInfo, Evidence, LayerInfo, ModelSnapshot, Variable
from grader.model.results import Status
from grader.rubric.load import load_rubric, validate_rubric_file
from tests.rubric_fixtures import FIXTURES, arch, bn, cells, conv, dense, plain, run

SEEDS = FIXTURES / "seed_requirements.yaml"


def task(results, task_id):
    return next(r for r in results if r.task_id == task_id)


def statuses(result):
    return {c.check: c.status for c in result.checks}


def test_seed_requirements_validate():
    assert validate_rubric_file(SEEDS) == []


def test_seed_rubric_selects_models_by_question_and_heading_text():
    loaded = load_rubric(SEEDS)
    selectors = [t.selector for t in loaded.tasks if t.selector]
    assert selectors
    assert all(s.fit is None or s.section for s in selectors)  # positions only within a named section


def cnn2() -> list[LayerInfo]:
    def block(i, cin, cout, size):
        return [conv(f"c{i}", cout, 3, cin, size, padding="same", activation=None), bn(f"b{i}", [None, size, size, cout]),
                plain(f"a{i}", "Activation", [None, size, size, cout], activation="relu")]
    return [*block(1, 1, 32, 28), *block(2, 32, 32, 28), plain("p1", "MaxPooling2D", [None, 14, 14, 32]),
            *block(3, 32, 64, 14), *block(4, 64, 64, 14), plain("p2", "MaxPooling2D", [None, 7, 7, 64]),
            plain("f", "Flatten", [None, 3136]), dense("d1", 200, 3136), bn("b5", [None, 200]), plain("drop", "Dropout", [None, 200]),
            plain("a5", "Activation", [None, 200], activation="relu"), dense("d2", 10, 200),
            plain("a6", "Activation", [None, 10], activation="softmax")]


def test_seed_000_cnn2_with_the_missing_layers():
    evidence = Evidence("s", cells=cells(("md", "## c) cnn2"), ("code", "model.fit()")), runs=[run(0, 1, arch(*cnn2()))])
    result = task(grade(load_rubric(SEEDS), evidence), "s000_cnn2")
    assert result.checks and all(c.status is Status.PASSED for c in result.checks), [c.message for c in result.checks]


def test_seed_000_cnn2_without_the_missing_layers_fails_with_the_place():
    layers = cnn2()
    del layers[10:14]  # the fourth conv block and the second pooling: "START/END OF THE MISSING LAYERS"
    evidence = Evidence("s", cells=cells(("md", "## c) cnn2"), ("code", "model.fit()")), runs=[run(0, 1, arch(*layers))])
    result = task(grade(load_rubric(SEEDS), evidence), "s000_cnn2")
    layer_check = next(c for c in result.checks if c.check == "layers")
    assert layer_check.status is Status.FAILED
    assert "Layer 11 (Flatten, f) is where they depart from it: expected Conv2D there." in layer_check.message


def vgg_classifier(trainable: int, frozen: int):
    base = LayerInfo("vgg16", "Functional", [None, 4, 4, 512], 14_714_688, trainable - 2_097_665, frozen,
                     layers=[plain("block1_conv1", "Conv2D", [None, 150, 150, 64])])
    model = arch(base, plain("flatten", "Flatten", [None, 8192]), dense("dense", 256, 8192, activation="relu"),
                 dense("dense_1", 1, 256, activation="sigmoid"))
    model.trainable_params, model.non_trainable_params = trainable, frozen
    return model


def test_seed_002_frozen_base_then_fine_tuning_of_one_model():
    evidence = Evidence("s", cells=cells(("md", "## Feature extraction"), ("code", "fit"), ("md", "## Fine-tuning"), ("code", "fit")),
                        runs=[run(0, 1, vgg_classifier(2_097_665, 14_714_688), model_id="vgg",
                                  compile=CompileInfo("RMSprop", 2e-5, "binary_crossentropy")),
                              run(1, 3, vgg_classifier(9_177_089, 7_635_264), model_id="vgg",
                                  compile=CompileInfo("RMSprop", 1e-5, "binary_crossentropy"))])
    results = grade(load_rubric(SEEDS), evidence, fast_mode=True)
    frozen, tuned = task(results, "s002_frozen"), task(results, "s002_finetune")
    assert frozen.checks and all(c.status is Status.PASSED for c in frozen.checks), [c.message for c in frozen.checks]
    assert statuses(tuned) == {"trainable_params": Status.PASSED, "learning_rate": Status.PASSED,
                               "val_accuracy": Status.NOT_ASSESSED, "overfitting": Status.NOT_ASSESSED}


def test_seed_003_answers_and_the_fill_in_model():
    notebook = cells(
        ("md", "Question 2: How does Flatten work?"), ("md", "4. all rows are concatenated"),
        ("md", "Question 3: shape after a 5x5 conv on 28x28?"), ("md", "24x24"),
        ("md", "Question 4: parameters of Conv2D(16, 3x3) and Dense(16)?"), ("md", "160 and 12,560"),
        ("code", "dense_params = 784 * 16 + 16"))
    model = arch(conv("conv1", 16, 3, 1, 26), conv("conv2", 32, 3, 16, 24), plain("mpool", "MaxPooling2D", [None, 12, 12, 32]),
                 plain("flat", "Flatten", [None, 4608]), dense("dense1", 128, 4608, activation="relu"),
                 dense("dense2", 10, 128, activation="softmax"), name="hello-world-cnn")
    evidence = Evidence("s", cells=notebook, variables=[Variable("dense_params", 12560, "int")],
                        models=[ModelSnapshot("m", "model", model, CompileInfo("Adam", 1e-3, "categorical_crossentropy"))])
    results = grade(load_rubric(SEEDS), evidence)
    for task_id in ("s003_blanks", "s003_flatten", "s003_conv_shape", "s003_param_counts"):
        result = task(results, task_id)
        assert result.checks and all(c.status is Status.PASSED for c in result.checks), (task_id, [c.message for c in result.checks])


def test_seed_004_batchnorm_cnn_figures():
    def block(i, cin, cout, size):
        return [conv(f"c{i}", cout, 3, cin, size, padding="same", activation=None), bn(f"b{i}", [None, size, size, cout]),
                plain(f"a{i}", "Activation", [None, size, size, cout], activation="relu")]
    layers = [*block(1, 3, 32, 48), *block(2, 32, 32, 48), plain("p1", "MaxPooling2D", [None, 24, 24, 32]),
              plain("d1", "Dropout", [None, 24, 24, 32]), *block(3, 32, 64, 24), *block(4, 64, 64, 24),
              plain("p2", "MaxPooling2D", [None, 12, 12, 64]), plain("d2", "Dropout", [None, 12, 12, 64]),
              plain("f", "Flatten", [None, 9216]), dense("fc1", 200, 9216), bn("b5", [None, 200]),
              plain("a5", "Activation", [None, 200], activation="relu"), plain("d3", "Dropout", [None, 200]),
              dense("fc2", 8, 200), plain("a6", "Activation", [None, 8], activation="softmax")]
    evidence = Evidence("s", cells=cells(("md", "## c) add batchnormalization"), ("code", "fit")), runs=[run(0, 1, arch(*layers))])
    result = task(grade(load_rubric(SEEDS), evidence, fast_mode=True), "s004_bn")
    assert statuses(result) == {"total_params": Status.PASSED, "non_trainable_params": Status.PASSED,
                                "contains": Status.PASSED, "train_accuracy": Status.NOT_ASSESSED,
                                "val_accuracy": Status.NOT_ASSESSED, "test_accuracy": Status.NOT_ASSESSED}
