"""Training checks: compile settings, epochs, batch size, the training data, accuracy,
overfitting, and comparisons between tasks' models.

Accuracy figures come from the strongest evidence available (:mod:`grader.checks.figures`).
Checks that need fully trained weights are not assessed in fast mode: a model trained for one
epoch on 512 images says nothing about whether the student's model reaches 62%.
"""

from __future__ import annotations

from typing import Any

from grader.model.format import fmt_int, fmt_number, fmt_pct
from grader.checks.base import (
    COUNT,
    FRACTION,
    NUMBER,
    TEXT,
    CheckContext,
    Outcome,
    check,
    failed,
    fraction,
    not_assessed,
    passed,
    range_ok,
    range_symbol,
    range_validate,
    range_words,
    ranged,
    verdict,
)
from grader.model.words import sentence
from grader.checks.figures import accuracy_figure, model_history, params_figure
from grader.checks.structure import normalize_loss
from grader.model.evidence import Level, history_values
from grader.model.results import SkipReason

FAST_MODE = ("Not assessed in fast mode: training was capped, so accuracy says nothing yet. Train in full "
             "for this check (grade check --full, or grade without --fast).")


def fast_mode_skip() -> Outcome:
    """The outcome of an accuracy check in fast mode; the report knows it by its reason
    (:attr:`~grader.model.results.CheckResult.skipped_by_fast_mode`), not by its words."""
    return not_assessed(FAST_MODE, details={"reason": SkipReason.FAST_MODE})


def _name_key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _one_of(p: dict[str, Any]) -> list[str]:
    if "equals" in p:
        return [p["equals"]]
    return list(p.get("one_of", []))


def _names_expand(value: Any) -> dict[str, Any]:
    return {"one_of": value} if isinstance(value, list) else {"equals": value}


_NAMES = {
    "equals": {**TEXT, "description": "this exact name"},
    "one_of": {"type": "array", "items": TEXT, "minItems": 1, "description": "any of these names"},
}


def _names_title(noun: str) -> Any:
    return lambda p: f"{noun} is {' or '.join(_one_of(p))}"


# ---------------------------------------------------------------------------------------------
# Compile settings


def _compile_missing(ctx: CheckContext) -> Outcome | None:
    assert ctx.target is not None
    if ctx.target.compile is None:
        return not_assessed(f"No compile settings were recorded for {ctx.target.where}.", level=ctx.target.level)
    return None


@check("optimizer", summary="The optimizer class (case-insensitive): SGD, Adam, RMSprop, ...",
       title=_names_title("optimizer"), params=_NAMES, one_of=("equals", "one_of"),
       shorthand={"anyOf": [TEXT, _NAMES["one_of"]]}, expand=_names_expand,
       example="- optimizer: SGD")
def optimizer_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    if (missing := _compile_missing(ctx)) is not None:
        return missing
    assert ctx.target is not None and ctx.target.compile is not None
    used = ctx.target.compile.optimizer
    wanted = _one_of(p)
    if not used:
        return failed(f"{ctx.model_word} was not compiled with an optimizer.", level=ctx.target.level)
    ok = _name_key(used) in {_name_key(w) for w in wanted}
    message = f"{ctx.model_word} is trained with {used}"
    message += "." if ok else f"; this task asks for {' or '.join(wanted)}."
    return verdict(ok, message, figure=used, level=ctx.target.level)


@check("learning_rate", summary="The optimizer's (initial) learning rate: exact or a range.",
       title=lambda p: f"learning rate {range_symbol(p)}", params=ranged({"type": "number", "exclusiveMinimum": 0}, noun="rate"),
       one_of=("equals", "at_least", "at_most", "between"), shorthand={"type": "number", "exclusiveMinimum": 0},
       expand=lambda v: {"equals": v}, validate=range_validate,
       example="- learning_rate: {between: [0.0001, 0.01]}")
def learning_rate_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    if (missing := _compile_missing(ctx)) is not None:
        return missing
    assert ctx.target is not None and ctx.target.compile is not None
    rate = ctx.target.compile.learning_rate
    if rate is None:
        return not_assessed(f"The learning rate of {ctx.target.where} was not recorded.", level=ctx.target.level)
    schedule = ctx.target.compile.optimizer_config.get("learning_rate_schedule")
    what = f"initial learning rate of its {schedule} schedule" if schedule else "learning rate"
    ok = range_ok(rate, p, tolerance=1e-6)
    message = f"The {what} is {fmt_number(rate)}"
    message += f" ({range_words(p)})." if ok else f"; this task asks for {range_words(p)}."
    return verdict(ok, message, figure=rate, level=ctx.target.level)


@check("loss", summary="The loss function (class or function name; CategoricalCrossentropy = categorical_crossentropy).",
       title=_names_title("loss"), params=_NAMES, one_of=("equals", "one_of"),
       shorthand={"anyOf": [TEXT, _NAMES["one_of"]]}, expand=_names_expand,
       example="- loss: categorical_crossentropy")
def loss_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    if (missing := _compile_missing(ctx)) is not None:
        return missing
    assert ctx.target is not None and ctx.target.compile is not None
    loss = normalize_loss(ctx.target.compile.loss)
    wanted = _one_of(p)
    if loss is None:
        return failed(f"{ctx.model_word} was compiled without a loss that the grader could read.", level=ctx.target.level)
    ok = loss in {normalize_loss(w) for w in wanted}
    message = f"{ctx.model_word} is trained with the loss {loss}"
    message += "." if ok else f"; this task asks for {' or '.join(wanted)}."
    return verdict(ok, message, figure=loss, level=ctx.target.level)


# ---------------------------------------------------------------------------------------------
# Fit arguments


@check("epochs", summary="Epochs the model was trained, added up over every fit of the same model up to the selected one; an epoch of several passes over the training data counts its passes.",
       title=lambda p: f"epochs trained {range_symbol({k: v for k, v in p.items() if k != 'count'})}",
       params={**ranged(COUNT, noun="number of epochs"),
               "count": {"enum": ["model", "fit"], "description": "model: every fit of the model so far (default); fit: the selected fit only"}},
       one_of=("equals", "at_least", "at_most", "between"), validate=range_validate,
       example="- epochs: {at_most: 25}")
def epochs_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    run = ctx.target.run
    if run is None:
        return not_assessed(f"{ctx.model_word} was never trained.", level=ctx.target.level)
    if p.get("count") == "fit":
        runs = [run]
    else:
        runs = sorted((r for r in ctx.evidence.runs if r.model_id == run.model_id and r.index <= run.index), key=lambda r: r.index)
    fast = ctx.fast_mode or any(r.fast_mode for r in runs)
    per_fit: list[int] = []
    for r in runs:
        # Fast mode caps the epochs that run; the epochs the student asked for stay exact. An epoch of
        # several passes over the training data (repeat() with a larger steps_per_epoch) counts its
        # passes: TrainingRun.limit_count, which the epoch_passes finding reads too.
        count = r.limit_count(fast)
        if count is None:
            return not_assessed(f"The epochs asked for in fit {r.index + 1} were not recorded (fast mode caps the epochs that run).",
                                level=r.level)
        per_fit.append(count)
    total = sum(per_fit)
    level = min(r.level for r in runs)
    verb = "asked to train" if fast else "trained"
    notes = [(r, note) for r in runs if (note := r.passes_note(fast))]
    breakdown = ""
    if len(runs) > 1:
        breakdown = " (" + ", ".join(f"fit {r.index + 1}: {n}" for r, n in zip(runs, per_fit, strict=True)) + ")"
    if notes:
        breakdown += " (counted as passes over the training data: " + "; ".join(
            (f"fit {r.index + 1}: " if len(runs) > 1 else "") + note for r, note in notes) + ")"
    expect = {k: v for k, v in p.items() if k != "count"}
    ok = range_ok(total, expect)
    message = f"{ctx.model_word} was {verb} for {fmt_int(total)} epochs{' in total' if len(runs) > 1 else ''}{breakdown}"
    message += f" ({range_words(expect)})." if ok else f"; this task allows {range_words(expect)}."
    return verdict(ok, message, figure=total, level=level)


@check("batch_size", summary="The batch size of the selected fit (Keras' default 32 when none was given for arrays).",
       title=lambda p: f"batch size {range_symbol(p)}", params=ranged({"type": "integer", "minimum": 1}, noun="batch size"),
       one_of=("equals", "at_least", "at_most", "between"), shorthand={"type": "integer", "minimum": 1},
       expand=lambda v: {"equals": v}, validate=range_validate,
       example="- batch_size: {at_least: 32}")
def batch_size_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    run = ctx.target.run
    if run is None:
        return not_assessed(f"{ctx.model_word} was never trained.", level=ctx.target.level)
    size = run.fit.batch_size
    note = ""
    if size is None and run.fit.x is not None:
        size, note = 32, " (Keras' default: no batch_size was given)"
    if size is None:
        return not_assessed(f"The batch size of {ctx.target.where} was not recorded (data from a generator?).", level=run.level)
    ok = range_ok(size, p)
    message = f"{ctx.model_word} was trained with batches of {size}{note}"
    message += "." if ok else f"; this task asks for {range_words(p)}."
    return verdict(ok, message, figure=size, level=run.level)


_DATA_RANGE = {"type": "object", "additionalProperties": False, "minProperties": 1,
               "properties": ranged(NUMBER, noun="value")}


@check("training_data", summary="What the training inputs looked like: sample count and value range (e.g. pixels scaled to [0, 1]).",
       title=lambda p: "training data: " + ", ".join(f"{k} {range_symbol(v)}" for k, v in p.items()),
       params={"samples": {**_DATA_RANGE, "description": "number of training samples"},
               "min": {**_DATA_RANGE, "description": "smallest input value"},
               "max": {**_DATA_RANGE, "description": "largest input value: {at_most: 1} for scaled pixels"},
               "mean": {**_DATA_RANGE, "description": "mean input value: {between: [-0.1, 0.1]} for centred data"}},
       one_of=("samples", "min", "max", "mean"),
       validate=lambda p: [problem for key in ("samples", "min", "max", "mean") if key in p for problem in range_validate(p[key])],
       example="- training_data: {max: {at_most: 1.0}}")
def training_data_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    run = ctx.target.run
    if run is None:
        return not_assessed(f"{ctx.model_word} was never trained.", level=ctx.target.level)
    x = run.fit.x
    samples = run.fit.train_samples if run.fit.train_samples is not None else (x.samples if x else None)
    capped = run.fit.capped.get("samples") if run.fit.capped else None
    if isinstance(capped, list) and capped:
        samples = capped[0]  # fast mode cut the data: judge what the student passed
    values = {"samples": samples, "min": x.minimum if x else None, "max": x.maximum if x else None,
              "mean": x.mean if x else None}
    words = {"samples": "training samples", "min": "smallest input value", "max": "largest input value", "mean": "mean input value"}
    problems, seen = [], []
    for key in ("samples", "min", "max", "mean"):
        if key not in p:
            continue
        value = values[key]
        if value is None:
            return not_assessed(f"The {words[key]} of {ctx.target.where} was not recorded.", level=run.level)
        seen.append(f"{words[key]} {fmt_number(value)}")
        if not range_ok(value, p[key]):
            problems.append(f"the {words[key]} is {fmt_number(value)}; this task asks for {range_words(p[key])}")
    if problems:
        message = sentence("; ".join(problems)) + "."
        if "max" in p and values["max"] is not None and values["max"] > 1.5 and p["max"].get("at_most", 99) <= 1.5:
            message += " Scale the pixels to [0, 1] before training, e.g. x_train / 255."
        return failed(message, level=run.level)
    return passed("Training data: " + ", ".join(seen) + ".", level=run.level)


# ---------------------------------------------------------------------------------------------
# Accuracy


def _diagnosis(ctx: CheckContext, threshold: float | None) -> str:
    """A sentence on why accuracy may be low, read off the training history."""
    assert ctx.target is not None
    history = model_history(ctx.evidence, ctx.target)
    train = history_values(history, "accuracy")
    val = history_values(history, "val_accuracy")
    if train and val and train[-1] - val[-1] > 0.1:
        return (f" Training accuracy reached {fmt_pct(train[-1])} while validation accuracy stayed at {fmt_pct(val[-1])}: "
                "the model overfits; Dropout, data augmentation or fewer epochs can help.")
    if train and threshold is not None and train[-1] < threshold:
        return (f" Even on the training data it reaches only {fmt_pct(train[-1])}: the model underfits; "
                "train longer, or give it more capacity.")
    return ""


_ACCURACY_PARAMS = {
    "at_least": {**FRACTION, "description": "the lowest accepted accuracy: 0.62 or '62%'"},
    "at_most": {**FRACTION, "description": "the highest accepted accuracy"},
    "use": {"enum": ["final", "best"], "description": "for figures from the training history: the last epoch (default) or the best"},
}
_RETRAIN_PARAM = {"retrain": {"type": "boolean", "description": "the grader trains the recorded architecture itself "
                                                              "(fixed seed, the notebook's settings) and checks that accuracy"}}


def _accuracy_check(kind: str, which: str, noun: str, example: str) -> None:
    def title(p: dict[str, Any]) -> str:
        parts = []
        if "at_least" in p:
            parts.append(f"≥ {fmt_pct(fraction(p['at_least']))}")
        if "at_most" in p:
            parts.append(f"≤ {fmt_pct(fraction(p['at_most']))}")
        return f"{noun} " + ", ".join(parts)

    def evaluate(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
        assert ctx.target is not None
        found = accuracy_figure(ctx.evidence, ctx.target, which, use=p.get("use", "final"),
                                retrained=ctx.rubric.retrained_accuracy)
        figure = found.figure
        notes = {"notes": found.notes} if found.notes else {}
        if figure is None:
            return not_assessed(f"No {noun} to check: {found.missing}.", details=notes)
        expect: dict[str, Any] = {k: fraction(p[k]) for k in ("at_least", "at_most") if k in p}
        ok = range_ok(figure.value, expect)
        said = f"{noun.capitalize()} {fmt_pct(figure.value)} ({figure.level.label}: {figure.source})"
        details = {"source": figure.source, **notes}
        # Every figure of the model is shown, named for what it measured; the one above counts.
        also = (" " + found.also_words()) if found.also else ""
        if found.also:
            details["also"] = [{"label": label, "value": f.value, "level": f.level.label, "source": f.source}
                               for label, f in found.also]
        if "at_least" in expect:  # the report draws it on the learning curve
            details["threshold"] = expect["at_least"]
        if ok:
            return passed(f"{said}; this task asks for {range_words(expect, fmt_pct)}.{also}", figure=figure.value,
                          level=figure.level, details=details)
        low = "at_least" in expect and figure.value < expect["at_least"]
        message = (f"{said} is below the {fmt_pct(expect['at_least'])} this task asks for." if low
                   else f"{said}; this task asks for {range_words(expect, fmt_pct)}.")
        if low:
            message += _diagnosis(ctx, expect["at_least"])
        return failed(message + also, figure=figure.value, level=figure.level, details=details)

    check(kind, summary=f"The model's {noun}, from the strongest evidence available (verified > evaluate in the kernel > history).",
          title=title, params={**_ACCURACY_PARAMS, **(_RETRAIN_PARAM if which == "test" else {})},
          one_of=("at_least", "at_most"), shorthand=FRACTION,
          expand=lambda v: {"at_least": v}, accuracy=True,
          validate=lambda p: [("at_least", "'at_least' is above 'at_most'")]
          if "at_least" in p and "at_most" in p and fraction(p["at_least"]) > fraction(p["at_most"]) else [],
          example=example)(evaluate)


_accuracy_check("test_accuracy", "test", "test accuracy", "- test_accuracy: {at_least: 62%, min_level: verified}")
_accuracy_check("val_accuracy", "val", "validation accuracy", "- val_accuracy: 60%")
_accuracy_check("train_accuracy", "train", "training accuracy", "- train_accuracy: {at_least: 90%, use: best}")


def _rising_streak(val_loss: list[float], loss: list[float]) -> tuple[int, int]:
    """Longest run of epochs in which validation loss rose while training loss fell: (length, last epoch index)."""
    best, best_end, current = 0, 0, 0
    for e in range(1, min(len(val_loss), len(loss))):
        if val_loss[e] > val_loss[e - 1] and loss[e] < loss[e - 1]:
            current += 1
            if current > best:
                best, best_end = current, e
        else:
            current = 0
    return best, best_end


@check("overfitting", summary="Signs of overfitting in the history: the final train − validation accuracy gap, "
                              "or validation loss rising for k epochs in a row while training loss falls.",
       title=lambda p: " and ".join(
           ([f"train − validation accuracy ≤ {fmt_pct(fraction(p['max_gap']))}"] if "max_gap" in p else [])
           + ([f"validation loss not rising for {p['rising_epochs']} epochs while training loss falls"] if "rising_epochs" in p else [])),
       params={"max_gap": {**FRACTION, "description": "largest accepted final training − validation accuracy"},
               "rising_epochs": {"type": "integer", "minimum": 1, "description": "fail when validation loss rises this many epochs in a row while training loss falls"}},
       one_of=("max_gap", "rising_epochs"), accuracy=True,
       example="- overfitting: {max_gap: 10%, rising_epochs: 3}")
def overfitting_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    run = ctx.target.run
    if run is None:
        return not_assessed(f"{ctx.model_word} was never trained.", level=ctx.target.level)
    history = model_history(ctx.evidence, ctx.target)
    problems: list[str] = []
    good: list[str] = []
    if "max_gap" in p:
        train, val = history_values(history, "accuracy"), history_values(history, "val_accuracy")
        if not train or not val:
            return not_assessed("The training history has no validation accuracy: fit with validation_data or "
                                "validation_split to see overfitting.", level=run.level)
        gap, limit = train[-1] - val[-1], fraction(p["max_gap"])
        text = (f"final training accuracy {fmt_pct(train[-1])} vs validation {fmt_pct(val[-1])}: "
                f"a gap of {fmt_pct(max(gap, 0))}")
        (good if gap <= limit + 1e-12 else problems).append(
            text + (f" (at most {fmt_pct(limit)} allowed)" if gap > limit + 1e-12 else ""))
    if "rising_epochs" in p:
        val_loss, loss = history_values(history, "val_loss"), history_values(history, "loss")
        if not val_loss or not loss:
            return not_assessed("The training history has no validation loss: fit with validation_data or "
                                "validation_split to see overfitting.", level=run.level)
        streak, end = _rising_streak(val_loss, loss)
        if streak >= p["rising_epochs"]:
            start = end - streak
            problems.append(f"validation loss rose for {streak} epochs in a row (epochs {start + 1}–{end + 1}: "
                            f"{val_loss[start]:.3g} → {val_loss[end]:.3g}) while training loss fell")
        else:
            good.append(f"validation loss never rose for {p['rising_epochs']} epochs in a row while training loss fell")
    if problems:
        return failed("The model overfits: " + "; ".join(problems) + ". Dropout, data augmentation, or stopping "
                      "earlier can help.", level=run.level)
    return passed("No sign of overfitting: " + "; ".join(good) + ".", level=run.level)


# ---------------------------------------------------------------------------------------------
# Comparison between tasks


@check("compare", summary="Compare with another task's model: fewer / more parameters, higher / lower test accuracy.",
       title=lambda p: " and ".join(
           ([f"{p['params']} parameters"] if "params" in p else [])
           + ([f"{p['accuracy']} test accuracy"] if "accuracy" in p else [])) + f" than task '{p['task']}'",
       params={"task": {**TEXT, "description": "the id of the other task"},
               "params": {"enum": ["fewer", "more"], "description": "this model has fewer / more parameters"},
               "accuracy": {"enum": ["higher", "lower"], "description": "this model has a higher / lower test accuracy"}},
       required=("task",), one_of=("params", "accuracy"),
       example="- compare: {task: fc, params: fewer, accuracy: higher}")
def compare_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    assert ctx.target is not None
    other = ctx.targets.get(p["task"])
    other_task = next((t for t in ctx.rubric.tasks if t.id == p["task"]), None)
    other_name = f"the {other_task.model_name}" if other_task and other_task.model_name != "model" else f"the model of task '{p['task']}'"
    if other is None:
        return not_assessed(f"Cannot compare: task '{p['task']}' found no model.")
    if "accuracy" in p and ctx.fast_mode:
        return fast_mode_skip()
    problems: list[str] = []
    facts: list[str] = []
    levels: list[Level] = []
    if "params" in p:
        mine, theirs = params_figure(ctx.evidence, ctx.target, "total"), params_figure(ctx.evidence, other, "total")
        levels += [mine.level, theirs.level]
        fewer = mine.value < theirs.value
        ratio = (theirs.value / mine.value) if fewer and mine.value else (mine.value / theirs.value if theirs.value else 0)
        relation = "fewer" if fewer else ("as many" if mine.value == theirs.value else "more")
        times = "" if ratio < 1.5 or relation == "as many" else (f"{ratio:,.0f}× " if ratio >= 10 else f"{ratio:.1f}× ")
        fact = f"{fmt_int(int(mine.value))} parameters, {times}{relation} than {other_name} ({fmt_int(int(theirs.value))})"
        (facts if relation == p["params"] else problems).append(fact)
    if "accuracy" in p:
        rule = ctx.rubric.retrained_accuracy
        mine_acc = accuracy_figure(ctx.evidence, ctx.target, retrained=rule)
        theirs_acc = accuracy_figure(ctx.evidence, other, retrained=rule)
        if mine_acc.figure is None or theirs_acc.figure is None:
            missing = mine_acc.missing if mine_acc.figure is None else theirs_acc.missing
            return not_assessed(f"Cannot compare accuracy: {missing}.")
        levels += [mine_acc.figure.level, theirs_acc.figure.level]
        higher = mine_acc.figure.value > theirs_acc.figure.value
        relation = "higher" if higher else ("the same" if mine_acc.figure.value == theirs_acc.figure.value else "lower")
        fact = (f"test accuracy {fmt_pct(mine_acc.figure.value)}, {relation} than {other_name}'s "
                f"{fmt_pct(theirs_acc.figure.value)}")
        (facts if relation == p["accuracy"] else problems).append(fact)
    level = min(levels) if levels else None
    if problems:
        asked = " and ".join(([f"{p['params']} parameters"] if "params" in p else [])
                             + ([f"a {p['accuracy']} test accuracy"] if "accuracy" in p else []))
        return failed(f"{ctx.model_word} has " + "; ".join(problems + facts) + f". This task asks for {asked} than {other_name}.",
                      level=level)
    return passed(f"{ctx.model_word} has " + " and ".join(facts) + ".", level=level)
