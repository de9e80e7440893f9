"""Training checks: compile settings, epochs, batch size, data, accuracy from the strongest evidence,
overfitting, comparisons between tasks, fast mode and min_level."""

from grader.checks import grade
from grader.model.evidence import CellRef, CompileInfo, DataFingerprint, Evaluation, Evidence, FitArgs, Level
from grader.model.results import Status
from tests.rubric_fixtures import cells, cifar_cnn, cifar_fc, history, lab_evidence, one_task, rubric, run, verified


def check(checks: str, evidence=None, *, fast_mode: bool = False, **kw):
    return grade(one_task(checks, **kw), evidence or lab_evidence(), fast_mode=fast_mode)[0].checks[0]


# -- compile settings


def test_optimizer_case_insensitive():
    assert check("- optimizer: sgd").status is Status.PASSED
    result = check("- optimizer: [Adam, RMSprop]")
    assert result.status is Status.FAILED and result.message == "Your CNN is trained with SGD; this task asks for Adam or RMSprop."


def test_learning_rate_range():
    assert check("- learning_rate: {between: [0.001, 0.1]}").status is Status.PASSED
    result = check("- learning_rate: {at_most: 0.001}")
    assert result.status is Status.FAILED and result.message == "The learning rate is 0.01; this task asks for at most 0.001."


def test_learning_rate_of_a_schedule():
    evidence = lab_evidence()
    evidence.runs[1].compile = CompileInfo("SGD", 0.1, "categorical_crossentropy", [], {"learning_rate_schedule": "ExponentialDecay"})
    assert check("- learning_rate: 0.1", evidence).message == "The initial learning rate of its ExponentialDecay schedule is 0.1 (exactly 0.1)."


def test_learning_rate_not_recorded():
    evidence = lab_evidence()
    evidence.runs[1].compile = CompileInfo("SGD", None, "categorical_crossentropy")
    assert check("- learning_rate: 0.1", evidence).status is Status.NOT_ASSESSED


def test_loss_names_normalised():
    assert check("- loss: CategoricalCrossentropy").status is Status.PASSED
    assert check("- loss: [binary_crossentropy, mse]").status is Status.FAILED


# -- epochs


def test_epochs_from_the_history():
    result = check("- epochs: {at_most: 25}")
    assert result.status is Status.PASSED and result.figure == 3


def test_epochs_of_several_fits_on_one_model_add_up():
    evidence = lab_evidence()
    evidence.runs[2].model_id = "m1"
    evidence.runs[2].architecture = cifar_cnn()
    evidence.runs[2].history = history(24)
    result = check("- epochs: {at_most: 25}", evidence, model="{fit: 3}")
    assert result.status is Status.FAILED and result.figure == 27
    assert result.message == "Your CNN was trained for 27 epochs in total (fit 2: 3, fit 3: 24); this task allows at most 25."


def test_epochs_of_the_selected_fit_only():
    evidence = lab_evidence()
    evidence.runs[2].model_id = "m1"
    evidence.runs[2].history = history(24)
    assert check("- epochs: {at_most: 25, count: fit}", evidence, model="{fit: 3}").figure == 24


def test_epochs_in_fast_mode_use_what_the_student_asked_for():
    evidence = lab_evidence(fast_mode=True)
    evidence.runs[1].fit = FitArgs(epochs=30, epochs_run=1, capped={"epochs": [30, 1]})
    evidence.runs[1].history = history(1)
    result = check("- epochs: {at_most: 25}", evidence, fast_mode=True)
    assert result.status is Status.FAILED and result.message == "Your CNN was asked to train for 30 epochs; this task allows at most 25."


def test_epochs_of_an_untrained_model():
    from grader.model.evidence import ModelSnapshot

    evidence = lab_evidence(models=[ModelSnapshot("x", "spare", cifar_cnn())])
    assert check("- epochs: {at_most: 3}", evidence, model="{variable: spare}").status is Status.NOT_ASSESSED


def test_batch_size():
    assert check("- batch_size: 64").status is Status.PASSED
    evidence = lab_evidence()
    evidence.runs[1].fit.batch_size = None
    result = check("- batch_size: {at_least: 64}", evidence)
    assert result.status is Status.FAILED and "32 (Keras' default: no batch_size was given)" in result.message


def test_training_data_scaled():
    assert check("- training_data: {max: {at_most: 1.0}}").status is Status.PASSED
    evidence = lab_evidence()
    evidence.runs[1].fit.x = DataFingerprint(50_000, [None, 32, 32, 3], "uint8", 0, 255, 120.7)
    result = check("- training_data: {max: {at_most: 1.0}, samples: {at_least: 10_000}}", evidence)
    assert result.status is Status.FAILED
    assert result.message == ("The largest input value is 255; this task asks for at most 1. "
                              "Scale the pixels to [0, 1] before training, e.g. x_train / 255.")


def test_training_data_samples_before_fast_mode_caps():
    evidence = lab_evidence()
    evidence.runs[1].fit.capped = {"samples": [4000, 512]}
    evidence.runs[1].fit.train_samples = 512
    assert check("- training_data: {samples: {equals: 4000}}", evidence).status is Status.PASSED


def test_training_data_centred():
    evidence = lab_evidence()
    evidence.runs[1].fit.x = DataFingerprint(4000, [None, 784], "float32", -0.42, 2.8, 0.001)
    assert check("- training_data: {mean: {between: [-0.05, 0.05]}}", evidence).status is Status.PASSED


# -- accuracy: the strongest evidence wins


def test_test_accuracy_from_evaluate_in_the_kernel():
    result = check("- test_accuracy: {at_least: 62%, min_level: executed}")
    assert result.status is Status.PASSED and result.level is Level.EXECUTED and result.figure == 0.631
    assert result.message == ("Test accuracy 63.1% (executed: model.evaluate in cell 11 on 10,000 samples); "
                              "this task asks for at least 62%.")


def test_a_kernel_figure_earns_no_accuracy_points_by_default():
    """What the kernel recorded, the kernel could have forged: by default only a verified test
    accuracy earns points; the kernel's figure needs review and keeps the verdict it would give."""
    result = check("- test_accuracy: 62%")
    assert result.status is Status.NEEDS_REVIEW and result.points == 0 and result.figure == 0.631
    assert result.details["verdict"] == "passed"
    assert result.message == ("Test accuracy 63.1% (executed: model.evaluate in cell 11 on 10,000 samples); this task "
                              "asks for at least 62%. Needs review: a test accuracy earns points only from verified "
                              "evidence (measured by the grader outside the notebook's kernel); the strongest available "
                              "is executed, model.evaluate in cell 11 on 10,000 samples.")


def test_the_rubric_may_lower_the_accuracy_evidence():
    rubric_ = one_task("- test_accuracy: 62%", extra="")
    rubric_.accuracy_evidence = Level.EXECUTED
    assert grade(rubric_, lab_evidence())[0].checks[0].status is Status.PASSED


def test_a_weak_figure_that_fails_stays_failed():
    evidence = lab_evidence()
    evidence.evaluations[0].results["accuracy"] = 0.41
    result = check("- test_accuracy: 62%", evidence)
    assert result.status is Status.FAILED and result.points == 0


def test_verified_accuracy_beats_the_kernel():
    evidence = lab_evidence(verifications=[verified("m1", 0.58)])
    result = check("- test_accuracy: 62%", evidence)
    assert result.status is Status.FAILED and result.level is Level.VERIFIED and result.figure == 0.58
    assert result.message.startswith("Test accuracy 58% (verified: clean re-evaluation on 10,000 test images) is below "
                                     "the 62% this task asks for.")


def test_failed_verification_falls_back_with_a_note():
    evidence = lab_evidence(verifications=[verified("m1", 0, status="unsafe", message="Lambda layer")])
    result = check("- test_accuracy: 62%", evidence)
    assert result.level is Level.EXECUTED
    assert result.details["notes"] == ["the grader could not verify the saved model (unsafe: Lambda layer)"]


def test_history_is_the_last_resort():
    evidence = lab_evidence(evaluations=[])
    result = check("- test_accuracy: 62%", evidence)
    assert result.level is Level.EXECUTED and result.figure == 0.64
    assert "last validation accuracy in the training history; no test evaluation was recorded" in result.message


def test_evaluation_after_a_later_fit_belongs_to_the_later_fit():
    evidence = lab_evidence()
    evidence.evaluations = [Evaluation(0, "m1", CellRef(13), 10_000, {"accuracy": 0.9})]
    evidence.runs[2].model_id = "m1"
    evidence.runs[2].cell = CellRef(12)
    # fit 2's evaluate happens after fit 3 of the same model: it is not fit 2's figure
    assert check("- test_accuracy: 62%", evidence).figure == 0.64


def test_verification_does_not_apply_to_an_earlier_fit_of_the_same_model():
    evidence = lab_evidence(verifications=[verified("m1", 0.2)])
    evidence.runs[2].model_id = "m1"
    result = check("- test_accuracy: 62%", evidence)
    assert result.level is Level.EXECUTED and result.figure == 0.631


def test_printed_test_score_in_static_mode():
    evidence = lab_evidence(mode="static")
    for r in evidence.runs:
        r.level = Level.REPORTED
    evidence.evaluations = [Evaluation(0, None, CellRef(10), None, {"acc": 0.6324}, Level.REPORTED)]
    result = check("- test_accuracy: 62%", evidence)
    assert result.level is Level.REPORTED and result.message.startswith("Test accuracy 63.2% (reported: test score printed in cell 11)")


def test_min_level_verified_refuses_weaker_evidence():
    result = check("- test_accuracy: {at_least: 62%, min_level: verified}")
    assert result.status is Status.NEEDS_REVIEW and result.points == 0
    assert result.message.endswith("Needs review: this check needs verified evidence (measured by the grader outside the "
                                   "notebook's kernel); the strongest available is executed, model.evaluate in cell 11 "
                                   "on 10,000 samples.")


def test_min_level_explains_why_verification_is_missing():
    evidence = lab_evidence(verifications=[verified("m1", 0, status="unsafe", message="Lambda layer")])
    result = check("- test_accuracy: {at_least: 62%, min_level: verified}", evidence)
    assert result.message.endswith("The grader could not verify the saved model (unsafe: Lambda layer).")


def test_min_level_met():
    evidence = lab_evidence(verifications=[verified("m1", 0.7)])
    assert check("- test_accuracy: {at_least: 62%, min_level: verified}", evidence).status is Status.PASSED


def test_min_level_executed_refuses_saved_outputs():
    evidence = lab_evidence()
    evidence.runs[1].level = Level.REPORTED
    assert check("- total_params: {equals: 81834, min_level: executed}", evidence).status is Status.NEEDS_REVIEW


def test_accuracy_not_assessed_in_fast_mode():
    result = check("- test_accuracy: 62%", fast_mode=True)
    assert result.status is Status.NOT_ASSESSED
    assert result.message.startswith("Not assessed in fast mode")


def test_fast_mode_flag_of_the_evidence_or_the_run_counts_too():
    assert check("- val_accuracy: 50%", lab_evidence(fast_mode=True)).status is Status.NOT_ASSESSED
    evidence = lab_evidence()
    evidence.runs[1].fast_mode = True
    assert check("- overfitting: {max_gap: 10%}", evidence).status is Status.NOT_ASSESSED


def test_low_accuracy_with_a_big_train_gap_suggests_regularisation():
    evidence = lab_evidence(evaluations=[])
    evidence.runs[1].history = history(10, acc=0.95, val_acc=0.55)
    result = check("- test_accuracy: 62%", evidence)
    assert result.message.endswith("Training accuracy reached 95% while validation accuracy stayed at 55%: the model "
                                   "overfits; Dropout, data augmentation or fewer epochs can help.")


def test_low_training_accuracy_suggests_more_capacity():
    evidence = lab_evidence(evaluations=[])
    evidence.runs[1].history = history(10, acc=0.5, val_acc=0.48)
    assert check("- test_accuracy: 62%", evidence).message.endswith(
        "Even on the training data it reaches only 50%: the model underfits; train longer, or give it more capacity.")


def test_val_accuracy_final_and_best():
    evidence = lab_evidence()
    evidence.runs[1].history["val_accuracy"] = [0.5, 0.66, 0.6]
    assert check("- val_accuracy: 65%", evidence).status is Status.FAILED
    best = check("- val_accuracy: {at_least: 65%, use: best}", evidence)
    assert best.status is Status.PASSED and best.figure == 0.66


def test_val_accuracy_with_keras2_key_names():
    evidence = lab_evidence()
    evidence.runs[1].history = {"loss": [1.0], "acc": [0.7], "val_loss": [1.1], "val_acc": [0.63]}
    assert check("- val_accuracy: 62%", evidence).figure == 0.63
    assert check("- train_accuracy: 70%", evidence).status is Status.PASSED


def test_no_validation_data():
    evidence = lab_evidence(evaluations=[])
    evidence.runs[1].history = {"loss": [1.0], "accuracy": [0.7]}
    result = check("- test_accuracy: 62%", evidence)
    assert result.status is Status.NOT_ASSESSED
    assert result.message == ("No test accuracy to check: no test or validation accuracy was recorded for fit 2 in cell 10 under "
                              "'4. CNN' (81,834 params) (fit without validation data, and no model.evaluate after it).")


def test_training_that_failed():
    evidence = lab_evidence(evaluations=[])
    evidence.runs[1].history = {}
    evidence.runs[1].error = "ValueError: Shapes (None, 1) and (None, 10) are incompatible"
    result = check("- test_accuracy: 62%", evidence)
    assert result.status is Status.NOT_ASSESSED
    assert result.message == "No test accuracy to check: its training in cell 10 failed (ValueError: Shapes (None, 1) and (None, 10) are incompatible)."


# -- overfitting


def test_overfitting_gap():
    evidence = lab_evidence()
    evidence.runs[1].history = history(10, acc=0.9, val_acc=0.65)
    result = check("- overfitting: {max_gap: 10%}", evidence)
    assert result.status is Status.FAILED
    assert result.message.startswith("The model overfits: final training accuracy 90% vs validation 65%: a gap of 25% (at most 10% allowed).")
    assert check("- overfitting: {max_gap: 30%}", evidence).status is Status.PASSED


def test_validation_loss_rising_while_training_loss_falls():
    evidence = lab_evidence()
    evidence.runs[1].history = {"loss": [1.0, 0.8, 0.6, 0.5, 0.4, 0.3], "val_loss": [1.1, 0.9, 0.95, 1.0, 1.1, 1.2],
                                "accuracy": [0.5] * 6, "val_accuracy": [0.5] * 6}
    result = check("- overfitting: {rising_epochs: 3}", evidence)
    assert result.status is Status.FAILED
    assert "validation loss rose for 4 epochs in a row (epochs 2–6: 0.9 → 1.2) while training loss fell" in result.message
    assert check("- overfitting: {rising_epochs: 5}", evidence).status is Status.PASSED


def test_overfitting_needs_validation_history():
    evidence = lab_evidence()
    evidence.runs[1].history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}
    assert check("- overfitting: {max_gap: 10%}", evidence).status is Status.NOT_ASSESSED


def test_history_of_repeated_fits_is_joined():
    evidence = Evidence("s", cells=cells(*[("code", "fit")] * 3), runs=[
        run(i, i, cifar_cnn(), model_id="m", hist={"loss": [1.0 - 0.1 * i], "val_loss": [0.8 + 0.1 * i],
                                                    "accuracy": [0.5], "val_accuracy": [0.5]}) for i in range(3)])
    result = check("- overfitting: {rising_epochs: 2}", evidence, model="{fit: 3}")
    assert result.status is Status.FAILED and "rose for 2 epochs in a row (epochs 1–3" in result.message


# -- comparisons


COMPARE = """
name: lab
tasks:
  - id: fc
    model_name: FC model
    model: {before: "Question 2"}
    checks: [{total_params: 12523266}]
  - id: cnn
    model_name: CNN
    model: {before: "Question 4"}
    checks:
      - compare: {task: fc, params: fewer, accuracy: higher}
"""


def test_cnn_is_more_efficient_than_fc():
    result = grade(rubric(COMPARE.replace("accuracy: higher}", "accuracy: higher, min_level: executed}")),
                   lab_evidence())[1].checks[0]
    assert result.status is Status.PASSED and result.level is Level.EXECUTED
    assert result.message == ("Your CNN has 81,834 parameters, 153× fewer than the FC model (12,523,266) and test accuracy "
                              "63.1%, higher than the FC model's 47%.")


def test_comparison_that_fails_says_both_figures():
    evidence = lab_evidence()
    evidence.evaluations[0].results["accuracy"] = 0.41
    result = grade(rubric(COMPARE), evidence)[1].checks[0]
    assert result.status is Status.FAILED
    assert result.message == ("Your CNN has test accuracy 41%, lower than the FC model's 47%; 81,834 parameters, 153× fewer "
                              "than the FC model (12,523,266). This task asks for fewer parameters and a higher test accuracy "
                              "than the FC model.")


def test_comparison_with_a_task_whose_model_is_missing():
    evidence = lab_evidence()
    evidence.cells[4].source = "Question two"
    result = grade(rubric(COMPARE), evidence)[1].checks[0]
    assert result.status is Status.NOT_ASSESSED and result.message == "Cannot compare: task 'fc' found no model."


def test_comparison_of_accuracy_in_fast_mode():
    result = grade(rubric(COMPARE), lab_evidence(), fast_mode=True)[1].checks[0]
    assert result.status is Status.NOT_ASSESSED and result.message.startswith("Not assessed in fast mode")


def test_comparison_of_parameters_only_works_in_fast_mode():
    text = COMPARE.replace(", accuracy: higher", "")
    assert grade(rubric(text), lab_evidence(), fast_mode=True)[1].checks[0].status is Status.PASSED


def test_fc_fixture_is_the_seed_figure():
    assert cifar_fc().total_params == 12_523_266 and cifar_cnn().total_params == 81_834
