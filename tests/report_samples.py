"""Realistic grade results for the report, export and CI-output tests (no notebook is executed).

They follow the CIFAR-10 lab of the course material (seed 001): a fully connected model that must
reach 45 % test accuracy, a CNN with 81,834 parameters that must reach 62 %, Dropout and BatchNorm
variants, a free-text question graded by hand, and a model that must reach 75 % in 25 epochs.

* :func:`passing_student` — everything recorded and verified, one check failed, a manual score.
* :func:`failing_student` — wrong CNN, cell errors, a selector that found nothing, findings, and
  outputs full of HTML (``<script>``, ``<img onerror>``) that must render as text.
* :func:`invalid_notebook_student` — a file with git merge-conflict markers.
* :func:`timed_out_student`, :func:`fast_mode_student`, :func:`class_results` (a whole class).
"""

from __future__ import annotations

import math
import random

from grader.model.evidence import (
    Architecture,
    CellError,
    CellRef,
    CompileInfo,
    Evidence,
    Figure,
    FitArgs,
    Finding,
    LayerInfo,
    Level,
    ModelSnapshot,
    TrainingRun,
    Verification,
)
from grader.model.results import CheckResult, GradeResult, Status, Student, SubmissionProblem, TaskResult

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
ASSIGNMENT = "CIFAR-10 lab"
RUBRIC = "rubrics/cifar10.yaml"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PASS_MARK = 12.0
MAX_SCORE = 18.0

# ------------------------------------------------------------------------------------------------
# Layers, with parameter counts computed the way Keras computes them.


def conv(filters, kernel, in_channels, out_hw, *, padding="valid", activation="relu"):
    params = kernel * kernel * in_channels * filters + filters
    return LayerInfo(name="conv2d", class_name="Conv2D", output_shape=[None, out_hw, out_hw, filters],
                     params=params, trainable_params=params, activation=activation,
                     config={"filters": filters, "kernel_size": [kernel, kernel], "padding": padding,
                             "strides": [1, 1]})


def pool(size, out_hw, channels):
    return LayerInfo(name="max_pooling2d", class_name="MaxPooling2D",
                     output_shape=[None, out_hw, out_hw, channels], config={"pool_size": [size, size]})


def dense(units, fan_in, activation="relu"):
    params = fan_in * units + units
    return LayerInfo(name="dense", class_name="Dense", output_shape=[None, units], params=params,
                     trainable_params=params, activation=activation,
                     config={"units": units, "input_dim": fan_in})


def flatten(size):
    return LayerInfo(name="flatten", class_name="Flatten", output_shape=[None, size])


def dropout(rate, shape):
    return LayerInfo(name="dropout", class_name="Dropout", output_shape=shape, config={"rate": rate})


def batchnorm(shape):
    channels = shape[-1]
    return LayerInfo(name="batch_normalization", class_name="BatchNormalization", output_shape=shape,
                     params=4 * channels, trainable_params=2 * channels,
                     non_trainable_params=2 * channels, config={"momentum": 0.99})


def activation(shape, name="relu"):
    return LayerInfo(name="activation", class_name="Activation", output_shape=shape, activation=name)


def architecture(layers, name="sequential"):
    total = sum(layer.params for layer in layers)
    trainable = sum(layer.trainable_params for layer in layers)
    return Architecture(name=name, class_name="Sequential", layers=layers, total_params=total,
                        trainable_params=trainable, non_trainable_params=total - trainable,
                        input_shape=[None, 32, 32, 3], output_shape=layers[-1].output_shape)


def fc_model():
    """The seed's CIFAR-10 FC net: 12,523,266 parameters."""
    return architecture([flatten(3072), dense(3072, 3072, "tanh"), dense(1000, 3072, "tanh"),
                         dense(10, 1000, "softmax")])


def cnn_model(with_dropout=False):
    """The seed's CIFAR-10 CNN: 81,834 parameters (5×5, 4×4, 2×2 convolutions)."""
    layers = [conv(32, 5, 3, 28), pool(2, 14, 32)]
    if with_dropout:
        layers.append(dropout(0.2, [None, 14, 14, 32]))
    layers += [conv(64, 4, 32, 11), pool(3, 3, 64)]
    if with_dropout:
        layers.append(dropout(0.2, [None, 3, 3, 64]))
    layers += [conv(120, 2, 64, 2), pool(2, 1, 120)]
    if with_dropout:
        layers.append(dropout(0.2, [None, 1, 1, 120]))
    layers += [flatten(120), dense(120, 120), dense(10, 120, "softmax")]
    return architecture(layers)


def bn_model():
    layers = []
    for filters, in_ch, hw in ((32, 3, 28), (64, 32, 11)):
        layers += [conv(filters, 5 if filters == 32 else 4, in_ch, hw, activation="linear"),
                   batchnorm([None, hw, hw, filters]), activation([None, hw, hw, filters])]
        layers.append(pool(2 if filters == 32 else 3, 14 if filters == 32 else 3, filters))
    layers += [conv(120, 2, 64, 2), pool(2, 1, 120), flatten(120), dense(120, 120),
               dense(10, 120, "softmax")]
    return architecture(layers)


def deep_model():
    """A ≥75 % design: three Conv-BN-ReLU blocks with Dropout, 654k parameters."""
    layers = []
    size, channels = 32, 3
    for filters, rate in ((64, 0.05), (128, 0.1), (256, 0.15)):
        for _ in range(2):
            layers += [conv(filters, 3, channels, size, padding="same", activation="linear"),
                       batchnorm([None, size, size, filters]), activation([None, size, size, filters])]
            channels = filters
        size //= 2
        layers += [pool(2, size, filters), dropout(rate, [None, size, size, filters])]
    layers += [flatten(size * size * channels), dense(10, size * size * channels, "softmax")]
    return architecture(layers)


def reference_architectures() -> dict[str, Architecture]:
    """The reference model of each task, keyed by task id (what ``render_student_report`` takes)."""
    return {"q2_fc": fc_model(), "q4_cnn": cnn_model(), "q5_dropout": cnn_model(with_dropout=True),
            "q7_batchnorm": bn_model()}


# ------------------------------------------------------------------------------------------------
# Histories and confusion matrices that look like real CIFAR-10 training.


def history(epochs, *, start, train_end, val_end, rng, overfit=0.0):
    acc, val_acc, loss, val_loss = [], [], [], []
    for e in range(epochs):
        progress = 1 - math.exp(-3.0 * (e + 1) / epochs)
        t = start + (train_end - start) * progress + rng.uniform(-0.004, 0.004)
        v = start + (val_end - start) * min(1.0, progress * 1.25) + rng.uniform(-0.012, 0.012)
        v -= overfit * max(0.0, e / epochs - 0.6)
        acc.append(round(t, 4))
        val_acc.append(round(v, 4))
        loss.append(round(2.3 * (1 - t) + 0.15, 4))
        val_loss.append(round(2.3 * (1 - v) + 0.25 + overfit * max(0, e - epochs * 0.6) / epochs * 3, 4))
    return {"loss": loss, "accuracy": acc, "val_loss": val_loss, "val_accuracy": val_acc}


def confusion(accuracy, rng, per_class=1000):
    hard = {"cat": -0.2, "bird": -0.12, "dog": -0.1, "deer": -0.05, "automobile": 0.12, "ship": 0.1,
            "truck": 0.08, "frog": 0.06, "airplane": 0.06, "horse": 0.05}
    matrix = []
    for t, name in enumerate(CLASSES):
        recall = min(0.97, max(0.05, accuracy + hard.get(name, 0.0)))
        correct = int(per_class * recall)
        row = [0] * len(CLASSES)
        row[t] = correct
        weights = [0.0 if p == t else (6.0 if {name, CLASSES[p]} == {"cat", "dog"} else
                                       3.0 if {name, CLASSES[p]} in ({"automobile", "truck"}, {"deer", "horse"}, {"airplane", "ship"}) else 1.0)
                   for p in range(len(CLASSES))]
        for _ in range(per_class - correct):
            p = rng.choices(range(len(CLASSES)), weights)[0]
            row[p] += 1
        matrix.append(row)
    return matrix


def run(index, model_id, cell, heading, arch, hist, *, variable="model", lr=0.01, epochs=None,
        level=Level.EXECUTED, capped=None, duration=None):
    epochs_run = len(hist["loss"])
    return TrainingRun(
        index=index, model_id=model_id, cell=CellRef(index=cell, heading=heading), architecture=arch,
        compile=CompileInfo(optimizer="SGD", learning_rate=lr, loss="categorical_crossentropy",
                            metrics=["accuracy"]),
        fit=FitArgs(epochs=epochs or epochs_run, epochs_run=epochs_run, batch_size=64,
                    train_samples=40000 if not capped else 512, validation_samples=10000 if not capped else 128,
                    capped=capped or {}),
        history=hist, level=level, duration_s=duration or 19.5 * epochs_run, variable=variable,
        weights_file=f"models/{model_id}.keras")


def verification(model_id, accuracy, rng, *, with_confusion=True):
    matrix = confusion(accuracy, rng) if with_confusion else None
    if matrix:  # the figure the grader reports is the one the matrix shows
        accuracy = sum(matrix[i][i] for i in range(len(matrix))) / sum(map(sum, matrix))
    return Verification(
        model_id=model_id, status="ok",
        test_accuracy=Figure(round(accuracy, 4), Level.VERIFIED, "clean re-evaluation on 10,000 test images"),
        test_loss=Figure(round(2.3 * (1 - accuracy) + 0.3, 4), Level.VERIFIED),
        samples=10000, confusion=matrix,
        class_names=CLASSES if with_confusion else None)


# ------------------------------------------------------------------------------------------------
# Checks of the CIFAR-10 rubric.


def check(kind, title, passed, points, *, message="", level=Level.EXECUTED, figure=None, details=None,
          status=None):
    status = status or (Status.PASSED if passed else Status.FAILED)
    earned = points if status is Status.PASSED else 0.0
    return CheckResult(check=kind, title=title, status=status, points=earned, max_points=points,
                       message=message, level=level, figure=figure, details=details or {})


def task(task_id, title, checks, *, model_id=None, selector="", selector_message="", manual=False,
         answer=None, human_score=None, human_comment=None, max_points=None):
    max_points = max_points if max_points is not None else sum(c.max_points for c in checks)
    points = sum(c.points for c in checks) + (human_score or 0.0)
    return TaskResult(task_id=task_id, title=title, points=points, max_points=max_points, checks=checks,
                      model_id=model_id, selector=selector, selector_message=selector_message,
                      manual=manual, answer=answer, human_score=human_score, human_comment=human_comment)


def manual_task(task_id, title, max_points, *, answer, human=None, comment=None):
    """A free-text item as the grader builds it: one ``manual`` check; a merged human score
    becomes that check's points (grader.checks.manual)."""
    item = CheckResult(check="manual", title="answer marked by hand", status=Status.MANUAL,
                       points=human or 0.0, max_points=max_points, level=Level.REPORTED,
                       message=("Graded by hand" + (f": {comment}" if comment else ".")) if human is not None
                       else "Waits for a human score.",
                       details={"answer": answer, **({"human_score": human} if human is not None else {})})
    return TaskResult(task_id=task_id, title=title, points=human or 0.0, max_points=max_points, checks=[item],
                      manual=True, answer=answer, human_score=human, human_comment=comment)


def accuracy_check(threshold, accuracy, points, level=Level.VERIFIED, kind="test_accuracy"):
    passed = accuracy >= threshold
    words = "test" if kind == "test_accuracy" else "validation"
    msg = (f"{words.capitalize()} accuracy {accuracy:.1%} reaches the target of {threshold:.0%}." if passed
           else f"{words.capitalize()} accuracy {accuracy:.1%} is below the target of {threshold:.0%}. "
                "Train longer, add capacity where the model underfits, or regularise where it overfits.")
    return check(kind, f"{words} accuracy ≥ {threshold:.0%}", passed, points, message=msg, level=level,
                 figure=round(accuracy, 4), details={"threshold": threshold, "metric": kind})


def grade(student, tasks, *, evidence, problems=(), mode="executed", fast_mode=False, duration=None):
    score = sum(t.points for t in tasks)
    return GradeResult(
        student=student, path=f"submissions/{student.key}.ipynb", rubric=RUBRIC, assignment=ASSIGNMENT,
        score=score, max_score=MAX_SCORE, pass_mark=PASS_MARK, passed=score >= PASS_MARK and not any(
            p.kind in {"invalid_notebook", "internal"} for p in problems),
        tasks=tasks, problems=list(problems), evidence=evidence, mode=mode, fast_mode=fast_mode,
        sandbox="bwrap", duration_s=duration, grader_version="0.1.0", graded_at="2026-03-15T09:12:00+01:00")


def _student_result(student, *, seed, fc_acc, cnn_acc, drop_acc, bn_acc, deep_acc, human=1.5,
                    answer=None, duration=None, epochs_deep=20, drop_gap=0.08):
    rng = random.Random(seed)
    runs, verifications = [], []
    specs = [
        ("m_fc", 8, "2. Fully connected model", fc_model(), 10, fc_acc, 0.03),
        ("m_cnn", 14, "4. CNN classifier", cnn_model(), 15, cnn_acc, 0.02),
        ("m_drop", 19, "5. Dropout", cnn_model(True), 15, drop_acc, 0.0),
        ("m_bn", 24, "7. BatchNorm", bn_model(), 15, bn_acc, 0.01),
        ("m_deep", 30, "9. Your best model", deep_model(), epochs_deep, deep_acc, 0.0),
    ]
    for i, (mid, cell, heading, arch, epochs, acc, overfit) in enumerate(specs):
        lead = drop_gap if mid == "m_drop" else 0.08
        hist = history(epochs, start=0.3, train_end=min(0.97, acc + lead + overfit * 3), val_end=acc,
                       rng=rng, overfit=overfit)
        runs.append(run(i, mid, cell, heading, arch, hist))
        verifications.append(verification(mid, acc + rng.uniform(-0.01, 0.01), rng))
    acc_of = {v.model_id: v.test_accuracy.value for v in verifications}
    gap = runs[2].history["accuracy"][-1] - runs[2].history["val_accuracy"][-1]
    deep_epochs = runs[4].epochs_trained
    tasks = [
        task("q2_fc", "2. Fully connected model, ≥ 45% test accuracy", [
            check("lacks_layer", "no convolutional layers", True, 1,
                  message="The model uses only Flatten and Dense layers."),
            accuracy_check(0.45, acc_of["m_fc"], 2),
        ], model_id="m_fc", selector="the last model trained before “Question 2”"),
        manual_task("q3_manual", "3. Why is CIFAR-10 harder than MNIST?", 2,
                    answer=answer or ("CIFAR-10 images are colour photographs of objects in varied poses and "
                                      "backgrounds, 3072 inputs instead of 784, and the classes look alike "
                                      "(cat and dog), while MNIST digits are centred, black and white and "
                                      "clearly separated."),
                    human=human, comment="Good; mention intra-class variation too." if human is not None else None),
        task("q4_cnn", "4. CNN classifier, ≥ 62% test accuracy", [
            check("total_params", "at most 100,000 parameters", True, 1,
                  message="81,834 parameters.", figure=81834),
            check("layer_sequence", "Conv2D → MaxPooling2D blocks, then Dense", True, 1),
            accuracy_check(0.62, acc_of["m_cnn"], 2),
        ], model_id="m_cnn", selector="the model trained in the section “4. CNN classifier”"),
        task("q4_efficient", "4b. The CNN is more efficient than the FC model", [
            check("compare", "fewer parameters and higher test accuracy than the FC model",
                  acc_of["m_cnn"] > acc_of["m_fc"], 1,
                  message=f"81,834 vs 12,523,266 parameters; test accuracy {acc_of['m_cnn']:.1%} vs "
                          f"{acc_of['m_fc']:.1%}.", level=Level.VERIFIED),
        ], model_id="m_cnn"),
        task("q5_dropout", "5. CNN with Dropout", [
            check("contains_layer", "contains a Dropout layer", True, 1, message="3 Dropout layers."),
            check("overfitting_gap", "train − validation accuracy ≤ 0.10", gap <= 0.10, 1,
                  message=f"The final gap is {gap:.2f}.", figure=round(gap, 3),
                  details={"threshold": 0.10, "metric": "gap"}),
        ], model_id="m_drop", selector="the model trained in the section “5. Dropout”"),
        task("q7_batchnorm", "7. CNN with BatchNorm", [
            check("contains_layer", "contains BatchNormalization", True, 1),
            accuracy_check(0.60, runs[3].history["val_accuracy"][-1], 1, level=Level.EXECUTED,
                           kind="val_accuracy"),
        ], model_id="m_bn", selector="the model trained in the section “7. BatchNorm”"),
        task("q9_best", "9. Your best model: ≥ 75% test accuracy in at most 25 epochs", [
            check("epochs_at_most", "at most 25 epochs", deep_epochs <= 25, 1,
                  message=f"Trained for {deep_epochs} epochs.", figure=deep_epochs),
            accuracy_check(0.75, acc_of["m_deep"], 3),
        ], model_id="m_deep", selector="the last model trained before “Question 9”"),
    ]
    evidence = Evidence(submission=f"{student.key}.ipynb", runs=runs, verifications=verifications,
                        duration_s=duration)
    return grade(student, tasks, evidence=evidence, duration=duration)


def passing_student() -> GradeResult:
    """Everything recorded and verified; the Dropout gap check fails; the essay is marked 1.5/2."""
    return _student_result(
        Student(key="alice_lindqvist", name="Alice Lindqvist", student_id="482913", login="alili123",
                email="alili123@student.example.edu", section="Lab group A",
                submitted_at="2026-03-14T21:40:00+01:00"),
        seed=1, fc_acc=0.478, cnn_acc=0.641, drop_acc=0.652, bn_acc=0.668, deep_acc=0.784,
        duration=412.0, drop_gap=0.18)


def failing_student() -> GradeResult:
    """A wrong CNN, two cell errors, a missing Dropout model, findings, and HTML in every text."""
    rng = random.Random(2)
    wrong_cnn = architecture([conv(32, 3, 3, 30), conv(64, 3, 32, 28), pool(2, 14, 64), flatten(12544),
                              dense(200, 12544), dense(10, 200, "softmax")])
    wrong_cnn.layers[3].name = SCRIPT  # a layer name the student chose
    fc_hist = history(10, start=0.28, train_end=0.55, val_end=0.47, rng=rng)
    cnn_hist = history(12, start=0.3, train_end=0.93, val_end=0.58, rng=rng, overfit=0.12)
    runs = [run(0, "m_fc", 8, "2. Fully connected model", fc_model(), fc_hist),
            run(1, "m_cnn", 14, f"4. CNN {IMG}", wrong_cnn, cnn_hist, epochs=15)]
    long_traceback = "\n".join(
        [f"  File \"/usr/lib/python3/site-packages/keras/src/module_{i}.py\", line {i * 7}, in call_{i}"
         for i in range(160)]
        + ["NameError: name 'x_trian' is not defined"])
    evidence = Evidence(
        submission="bob.ipynb",
        runs=runs,
        verifications=[verification("m_fc", 0.471, rng),
                       verification("m_cnn", 0.581, rng)],
        models=[ModelSnapshot(model_id="m_unused", variable="model_try2",
                              architecture=architecture([flatten(3072), dense(64, 3072), dense(10, 64, "softmax")]))],
        cell_errors=[
            CellError(cell=CellRef(index=18, heading="5. Dropout"), ename="NameError",
                      evalue="name 'x_trian' is not defined",
                      traceback=long_traceback,
                      source=f"print('{SCRIPT}')\nmodel.fit(x_trian, y_train, epochs=15)  # {IMG}"),
            CellError(cell=CellRef(index=23, heading="7. BatchNorm"), ename="ValueError",
                      evalue=f"Argument(s) not recognized: {{'lr': 0.01}} {IMG}",
                      traceback="Traceback (most recent call last):\n  Cell In[23], line 2\n"
                                "    opt = SGD(lr=0.01, decay=1e-6)\nValueError: Argument(s) not recognized",
                      source="opt = SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)\n" + "x = 1\n" * 90),
        ],
        findings=[
            Finding(kind="compat", message="Used the removed argument `lr`; graded as `learning_rate`.",
                    cell=CellRef(index=23), severity="info"),
            Finding(kind="mismatch", message=f"The accuracy printed in the notebook (71.0%) does not match the "
                                             f"saved model (58.1%). {SCRIPT}", cell=CellRef(index=15),
                    severity="warning"),
        ],
        duration_s=655.0,
    )
    tasks = [
        task("q2_fc", "2. Fully connected model, ≥ 45% test accuracy", [
            check("lacks_layer", "no convolutional layers", True, 1),
            accuracy_check(0.45, 0.471, 2),
        ], model_id="m_fc", selector="the last model trained before “Question 2”"),
        manual_task("q3_manual", "3. Why is CIFAR-10 harder than MNIST?", 2,
                    answer=f"Because it is bigger. {SCRIPT} {IMG}\n\n" + "More colours. " * 700),
        task("q4_cnn", "4. CNN classifier, ≥ 62% test accuracy", [
            check("total_params", "at most 100,000 parameters", False, 1,
                  message=f"Your CNN has 2,530,402 parameters; this task asks for at most 100,000. Most of them "
                          f"are in {SCRIPT} (12,544 × 200 weights + 200 biases).", figure=2530402),
            check("layer_sequence", "Conv2D → MaxPooling2D blocks, then Dense", False, 1,
                  message="Found Conv2D Conv2D MaxPooling2D Flatten Dense Dense: each Conv2D should be "
                          "followed by a MaxPooling2D."),
            accuracy_check(0.62, 0.581, 2),
        ], model_id="m_cnn", selector="the model trained in the section “4. CNN classifier”"),
        task("q4_efficient", "4b. The CNN is more efficient than the FC model", [
            check("compare", "fewer parameters and higher test accuracy than the FC model", True, 1,
                  message="2,530,402 vs 12,523,266 parameters; test accuracy 58.1% vs 47.1%.",
                  level=Level.VERIFIED),
        ], model_id="m_cnn"),
        task("q5_dropout", "5. CNN with Dropout", [
            check("contains_layer", "contains a Dropout layer", False, 1, status=Status.NOT_ASSESSED,
                  message="No model was found for this task.", level=None),
            check("overfitting_gap", "train − validation accuracy ≤ 0.10", False, 1,
                  status=Status.NOT_ASSESSED, message="No model was found for this task.", level=None),
        ], selector="the model trained in the section “5. Dropout”",
            selector_message="No model was trained in the section “5. Dropout” (its training cell raised "
                             "NameError). Found 2 models trained elsewhere: cell 8 (Flatten, Dense ×3) and "
                             "cell 14 (Conv2D ×2, MaxPooling2D, Flatten, Dense ×2)."),
    ]
    result = grade(Student(key="bob", name=f"Bob {SCRIPT}", student_id="482977", login="bobbe42",
                           late=True, submitted_at="2026-03-15T02:13:00+01:00",
                           note="3 files uploaded; graded the newest, hw1-2.ipynb"),
                   tasks, evidence=evidence, duration=655.0)
    return result


def invalid_notebook_student() -> GradeResult:
    """A submission that is not valid JSON: git merge-conflict markers."""
    return grade(
        Student(key="carol", name="Carol Nyström", student_id="483001", login="carny01",
                submitted_at="2026-03-14T12:00:00+01:00"),
        [], evidence=None, duration=0.2,
        problems=[SubmissionProblem(
            kind="invalid_notebook",
            message="carol.ipynb is not a valid notebook: it contains git merge-conflict markers "
                    "(‘<<<<<<< HEAD’ at line 212). Resolve the conflict, check the notebook opens in "
                    "Jupyter, and submit it again.",
            detail="json.decoder.JSONDecodeError: Expecting value: line 212 column 1 (char 8812)")])


def timed_out_student() -> GradeResult:
    """The run stopped at the notebook timeout after Question 4; later tasks were not assessed."""
    result = _student_result(
        Student(key="dave", name="Dave Okafor", student_id="483120", login="davok77"),
        seed=4, fc_acc=0.462, cnn_acc=0.633, drop_acc=0.64, bn_acc=0.65, deep_acc=0.7, duration=3600.0)
    for t in result.tasks[4:]:
        for c in t.checks:
            c.status, c.points, c.level = Status.NOT_ASSESSED, 0.0, None
            c.message = "Not assessed: the run timed out before this task."
        t.points = 0.0
        t.model_id = None
    result.evidence.runs = result.evidence.runs[:2]
    result.evidence.verifications = result.evidence.verifications[:2]
    result.evidence.timed_out = "notebook timeout of 60 min reached in cell 19"
    result.problems.append(SubmissionProblem(kind="timeout", message="The notebook timeout of 60 min was "
                                             "reached in cell 19; the cells after it did not run."))
    result.score = sum(t.points for t in result.tasks)
    result.passed = result.score >= PASS_MARK
    result.sandbox = "none"
    return result


def fast_mode_student() -> GradeResult:
    """``grade check`` in fast mode: 512 samples, one epoch; accuracy checks not assessed."""
    rng = random.Random(5)
    hist = history(1, start=0.1, train_end=0.22, val_end=0.2, rng=rng)
    capped = {"epochs": [15, 1], "samples": [50000, 512]}
    runs = [run(0, "m_cnn", 14, "4. CNN classifier", cnn_model(), hist, epochs=15, capped=capped)]
    runs[0].fast_mode = True
    tasks = [task("q4_cnn", "4. CNN classifier, ≥ 62% test accuracy", [
        check("total_params", "at most 100,000 parameters", True, 1, message="81,834 parameters.",
              figure=81834),
        check("layer_sequence", "Conv2D → MaxPooling2D blocks, then Dense", True, 1),
        check("test_accuracy", "test accuracy ≥ 62%", False, 2, status=Status.NOT_ASSESSED, level=None,
              message="Not assessed in fast mode: the model trained on 512 images for 1 epoch.",
              details={"threshold": 0.62}),
    ], model_id="m_cnn")]
    evidence = Evidence(submission="me.ipynb", runs=runs, fast_mode=True, duration_s=21.0)
    result = grade(Student(key="me"), tasks, evidence=evidence, fast_mode=True, duration=21.0)
    result.max_score, result.pass_mark, result.passed = 4.0, None, None
    return result


def static_student() -> GradeResult:
    """Graded from saved outputs (an old Keras 1 notebook): every figure is ``reported``."""
    result = _student_result(Student(key="erik", name="Erik Sandberg", student_id="483200"),
                             seed=6, fc_acc=0.45, cnn_acc=0.6, drop_acc=0.62, bn_acc=0.63, deep_acc=0.74)
    result.mode = "static"
    for r in result.evidence.runs:
        r.level = Level.REPORTED
    result.evidence.verifications = []
    result.evidence.mode = "static"
    for c in result.checks:
        if c.level is not None:
            c.level = Level.REPORTED
    return result


FIRST = ["Amira", "Björn", "Chen", "Dalia", "Elias", "Fatima", "Gustav", "Hanna", "Ivan", "Jonna", "Karim",
         "Lina", "Mattias", "Nora", "Oskar", "Petra", "Quentin", "Rosa", "Samir", "Tove", "Ulla", "Viktor",
         "Wilma", "Yusuf"]
LAST = ["Berg", "Holm", "Wang", "Haddad", "Ek", "Rahimi", "Lund", "Sjöberg", "Petrov", "Nilsson", "Aziz",
        "Strand", "Falk", "Lindberg", "Åkesson", "Novak", "Dubois", "Moreno", "Khalil", "Engström",
        "Björk", "Kowalski", "Hedlund", "Demir"]


def class_results(n: int = 24) -> list[GradeResult]:
    """A whole class: the special students above plus ``n`` generated ones."""
    rng = random.Random(42)
    results = [passing_student(), failing_student(), invalid_notebook_student(), timed_out_student(),
               static_student()]
    for i in range(n):
        skill = rng.gauss(0, 0.06)
        result = _student_result(
            Student(key=f"s{i:03d}", name=f"{FIRST[i % 24]} {LAST[(i * 7) % 24]}", student_id=str(484000 + i),
                    login=f"stud{i:03d}", late=rng.random() < 0.12),
            seed=100 + i, fc_acc=0.46 + skill, cnn_acc=0.63 + skill, drop_acc=0.64 + skill,
            bn_acc=0.66 + skill, deep_acc=0.74 + 1.5 * skill, human=rng.choice([0.5, 1, 1.5, 2, 2]),
            duration=rng.uniform(240, 900), epochs_deep=rng.choice([20, 25, 25, 30]),
            drop_gap=rng.uniform(0.04, 0.14))
        results.append(result)
    return results
