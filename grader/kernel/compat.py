"""Removed Keras 1/2 spellings, read with their Keras 3 meaning inside the student's kernel.

Course notebooks written for Keras 1, standalone Keras 2 or ``tf.keras`` 2.x use arguments and
methods that Keras 3 refuses (``SGD(lr=0.01)``, ``fit(nb_epoch=5)``, ``fit_generator``,
``Convolution2D(32, 3, 3, border_mode='same')``, ``it.next()``, ``keras.utils.np_utils``).
One refused call fails every later cell, so a single removed spelling would cost a student every
point. :func:`install` teaches Keras 3 those spellings where their meaning is unambiguous and
reports each one, so the report can tell the student what to write today::

    from grader.kernel import compat
    findings = []
    compat.install(findings.append)        # once `import keras` has completed
    keras.optimizers.SGD(lr=0.01)           # works; findings[0]["api"] == "SGD(lr=...)"

What is never done: change a model's architecture, guess between two meanings, or replace a Keras
class (wrappers go on the original class, so ``isinstance`` and ``type(...) is`` still hold).
When a call spells both the old and the new argument, nothing is translated and Keras 3's own
error stands.

Deliberately left alone, because the old meaning is ambiguous or cannot be reproduced:
``Conv2D(32, 3, 3)`` without any Keras-1-only argument (tf.keras 2 already read the third number
as ``strides``; reported as a warning), ``decay`` together with a learning-rate schedule,
positional optimizer arguments whose order changed (``Adam(0.001, 0.9, 0.999, 1e-8, 0.0)``),
``BatchNormalization(mode=1|2)``, ``Embedding(dropout=...)``, Keras 1 recurrent-layer arguments,
``merge``/``Merge``, ``model.save("dir")`` (SavedModel) and ``save_weights("w.h5")`` file names,
and ``keras.wrappers.scikit_learn``.

This module runs in the student's kernel: it imports only the standard library at import time
and Keras inside :func:`install`; it must never import the ``grader`` package.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import math
import sys
import types
from typing import Any, Callable, Iterable

Report = Callable[[dict], None]

# Feature names, so that a rubric or `--no-compat` can switch parts off independently.
OPTIMIZER_ARGUMENTS = "optimizer_arguments"  # lr, decay, optimizer.lr, legacy/lowercase optimizers
TRAINING_ARGUMENTS = "training_arguments"  # fit/evaluate/predict arguments, *_generator, ...
ITERATOR_NEXT = "iterator_next"  # ImageDataGenerator iterators' `.next()`
LAYER_ARGUMENTS = "layer_arguments"  # Keras 1 layer arguments, Model(input=, output=)
MODULE_PATHS = "module_paths"  # keras.layers.convolutional, keras.utils.np_utils, ...
PLOT_MODEL_HARMLESS = "plot_model_harmless"  # plot_model without pydot/graphviz returns None
OLD_COURSE_APIS = "old_course_apis"  # tf.set_random_seed (TF1), TensorBoard without tensorboard
ALL_FEATURES = frozenset(
    {OPTIMIZER_ARGUMENTS, TRAINING_ARGUMENTS, ITERATOR_NEXT, LAYER_ARGUMENTS, MODULE_PATHS,
     PLOT_MODEL_HARMLESS, OLD_COURSE_APIS}
)

_MARK = "__nn_grader_compat__"


class _State:
    """Everything install() changed, so that uninstall() can put it back."""

    def __init__(self) -> None:
        self.report: Report | None = None
        self.seen: set[str] = set()
        self.patches: list[tuple[Any, str, bool, Any]] = []  # owner, name, had own value, value
        self.modules: list[str] = []  # names added to sys.modules
        # id(module) -> (module, {name: resolver}): names a module's __getattr__ resolves.
        self.missing: dict[int, tuple[types.ModuleType, dict[str, Callable[[], Any]]]] = {}
        self.py_dataset: type | None = None  # Keras 3's PyDataset, which fit() takes as is


_state: _State | None = None


def install(report: Report, features: Iterable[str] = ALL_FEATURES) -> None:
    """Teach the imported Keras 3 the removed spellings; call ``report(finding)`` once per use.

    ``finding`` is ``{"kind": "compat", "api": "SGD(lr=...)", "message": "...", "severity":
    "info"}``; ``severity`` is ``"warning"`` for a spelling that was left as Keras 3 reads it
    because its old meaning is ambiguous. Findings are deduplicated by ``api``.

    Call after ``import keras`` has completed and after anything else that wraps
    ``keras.Model.fit``/``evaluate``/``predict`` (the recorder), so those wrappers receive the
    translated arguments. A second call only replaces ``report``.

    A feature that cannot be installed (a Keras release moved what it patches) is skipped and
    reported as a ``"warning"`` finding instead of failing the student's ``import keras``.
    """
    global _state
    features = frozenset(features)
    unknown = features - ALL_FEATURES
    if unknown:
        raise ValueError(
            f"unknown compat features {sorted(unknown)}; known: {sorted(ALL_FEATURES)}")
    if _state is not None:
        _state.report = report
        return
    import keras  # noqa: F401  (already imported by the caller; here only to fail clearly if not)

    _state = _State()
    _state.report = report
    installers = {
        OPTIMIZER_ARGUMENTS: _install_optimizers,
        TRAINING_ARGUMENTS: _install_training,
        ITERATOR_NEXT: _install_iterator_next,
        LAYER_ARGUMENTS: _install_layers,
        MODULE_PATHS: _install_module_paths,
        PLOT_MODEL_HARMLESS: _install_plot_model,
        OLD_COURSE_APIS: _install_old_course_apis,
    }
    for name, installer in installers.items():
        if name in features:
            try:
                installer()
            except Exception as error:  # each patch stands alone: the others still help
                _report(f"install {name}", f"compatibility `{name}` is not available with this "
                        f"Keras version ({type(error).__name__}: {error})", severity="warning")
    for module, names in _state.missing.values():
        _install_module_getattr(module, names)


def uninstall() -> None:
    """Undo :func:`install` (for tests; a kernel never needs it)."""
    global _state
    state, _state = _state, None
    if state is None:
        return
    for owner, name, had, value in reversed(state.patches):
        if had:
            setattr(owner, name, value)
        elif name in vars(owner):
            delattr(owner, name)
    for name in state.modules:
        sys.modules.pop(name, None)


def _report(api: str, message: str, severity: str = "info") -> None:
    state = _state
    if state is None or api in state.seen:
        return
    state.seen.add(api)
    try:
        state.report({"kind": "compat", "api": api, "message": message, "severity": severity})
    except Exception:  # a failing recorder must not fail the student's cell
        pass


def _renamed(api: str, old: str, new: str) -> None:
    _report(api, f"used the removed argument `{old}`; graded as `{new}`")


def _set(owner: Any, name: str, value: Any) -> None:
    """Set ``owner.name`` and remember the previous value for uninstall()."""
    own = vars(owner)
    _state.patches.append((owner, name, name in own, own.get(name)))
    setattr(owner, name, value)


def _delete(owner: Any, name: str) -> None:
    own = vars(owner)
    if name in own:
        _state.patches.append((owner, name, True, own[name]))
        delattr(owner, name)


def _wrap(owner: type, name: str, make: Callable[[Callable], Callable]) -> None:
    """Replace the method ``owner.name`` with ``make(original)``, keeping its name and signature.

    The signature is set explicitly: Keras' ``Operation.__new__`` combines ``inspect.signature``
    (which follows ``__wrapped__``) with ``inspect.getfullargspec`` (which reads only
    ``__signature__``), and the two must agree.
    """
    original = getattr(owner, name)
    if getattr(original, _MARK, False):
        return
    wrapper = functools.wraps(original)(make(original))
    wrapper.__signature__ = inspect.signature(original)
    setattr(wrapper, _MARK, True)
    _set(owner, name, wrapper)


def _add_method(owner: type, name: str, function: Callable) -> None:
    """Give ``owner`` a method Keras 3 removed, unless it (or a base) still has one."""
    if not hasattr(owner, name):
        function.__name__ = function.__qualname__ = name
        setattr(function, _MARK, True)
        _set(owner, name, function)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- optimizers ---------------------------------------------------------------------------------

_OPTIMIZER_ALIASES = {  # standalone Keras 2 exported lowercase aliases of its optimizers
    "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adadelta": "Adadelta",
    "adam": "Adam", "adamax": "Adamax", "nadam": "Nadam",
}
# tf.keras.optimizers.legacy.* were the Keras 2 (OptimizerV2) versions of the same algorithms.
_LEGACY_OPTIMIZERS = ("SGD", "Adam", "RMSprop", "Adagrad", "Ftrl")


def _install_optimizers() -> None:
    import keras
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    def make_init(original: Callable) -> Callable:
        def __init__(self, *args, **kwargs):
            if "lr" in kwargs or "decay" in kwargs:
                args, kwargs = _optimizer_arguments(type(self).__name__, args, kwargs)
            return original(self, *args, **kwargs)

        return __init__

    # Every Keras 3 optimizer passes its keyword arguments on to BaseOptimizer.__init__, which
    # refuses `lr` and silently ignores `decay`: one wrapper there serves all of them, and the
    # subclasses' own defaults (`learning_rate=0.01` for SGD) have been filled in by then.
    _wrap(BaseOptimizer, "__init__", make_init)

    def get_lr(self):
        _report("optimizer.lr", "read the removed attribute `optimizer.lr`; graded as "
                "`optimizer.learning_rate`")
        return self.learning_rate

    def set_lr(self, value):
        _report("optimizer.lr", "set the removed attribute `optimizer.lr`; graded as "
                "`optimizer.learning_rate`")
        self.learning_rate = value

    if not hasattr(BaseOptimizer, "lr"):
        _set(BaseOptimizer, "lr", property(get_lr, set_lr))

    for module_name in ("keras.optimizers", "keras._tf_keras.keras.optimizers"):
        for alias, name in _OPTIMIZER_ALIASES.items():
            _missing(module_name, alias, _resolved(
                lambda n=name: getattr(keras.optimizers, n),
                f"keras.optimizers.{alias}",
                f"used the removed alias `keras.optimizers.{alias}`; graded as "
                f"`keras.optimizers.{name}`"))
    for module_name in ("keras.optimizers.legacy", "keras._tf_keras.keras.optimizers.legacy"):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name in _LEGACY_OPTIMIZERS:
            # Keras 3 keeps these names only as a class whose constructor raises ImportError;
            # removing them lets the module's __getattr__ resolve them instead.
            _delete(module, name)
            _missing(module_name, name, _resolved(
                lambda n=name: getattr(keras.optimizers, n),
                f"optimizers.legacy.{name}",
                f"used `optimizers.legacy.{name}` (the Keras 2 optimizer); graded as "
                f"`keras.optimizers.{name}`, the same algorithm in Keras 3"))


def _optimizer_arguments(owner: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Translate ``lr`` and ``decay`` the way Keras 2 read them."""
    kwargs = dict(kwargs)
    if args:
        learning_rate, args = args[0], args[1:]
    else:
        learning_rate = kwargs.pop("learning_rate", None)
    if "lr" in kwargs:
        # Keras 2 read `kwargs.pop("lr", learning_rate)`: `lr` wins over `learning_rate`.
        learning_rate = kwargs.pop("lr")
        _renamed(f"{owner}(lr=...)", "lr", "learning_rate")
    decay = kwargs.pop("decay", None)
    if _is_number(decay) and decay == 0:
        _report(f"{owner}(decay=0)", "used the removed argument `decay=0`, which had no effect; "
                "dropped")
    elif _is_number(decay) and decay > 0 and _is_number(learning_rate):
        import keras

        # Keras 2 used lr / (1 + decay * iterations), iterations counted before the update:
        # the step-k update used lr / (1 + decay * k). Keras 3 evaluates a schedule at the
        # same pre-update iteration count, so this schedule reproduces it exactly.
        initial, rate = float(learning_rate), float(decay)
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            initial_learning_rate=initial, decay_steps=1, decay_rate=rate)
        _report(f"{owner}(decay=...)",
                f"used the removed argument `decay={rate:g}`; graded as the schedule "
                f"`InverseTimeDecay(initial_learning_rate={initial:g}, decay_steps=1, "
                f"decay_rate={rate:g})`, i.e. lr / (1 + decay * iteration) as Keras 2 applied it")
    elif decay is not None:
        # With a schedule (or a negative decay) Keras 2's result is not reproduced: Keras 3
        # warns and ignores `decay`, and the finding says so.
        kwargs["decay"] = decay
        _report(f"{owner}(decay=...)", "used the removed argument `decay` with a learning rate "
                "that is not a number; not mapped, Keras 3 ignores it", severity="warning")
    kwargs["learning_rate"] = learning_rate
    return args, kwargs


def _is_number(value: Any) -> bool:
    if isinstance(value, (int, float)):
        return not isinstance(value, bool)
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, (numpy.floating, numpy.integer))


# --- fit / evaluate / predict ---------------------------------------------------------------------

# tf.keras 2 accepted these on fit/evaluate/predict; they only chose how data was loaded.
_LOADING_ARGUMENTS = ("workers", "use_multiprocessing", "max_queue_size")


def _install_training() -> None:
    import keras
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDataset

    _state.py_dataset = PyDataset
    model = keras.Model

    def make(method: str, step_arguments: tuple[str, ...]) -> Callable[[Callable], Callable]:
        def make_wrapper(original: Callable) -> Callable:
            def wrapper(self, *args, **kwargs):
                args, kwargs = _training_arguments(method, step_arguments, args, kwargs)
                return original(self, *args, **kwargs)

            return wrapper

        return make_wrapper

    _wrap(model, "fit", make("fit", ("steps_per_epoch", "validation_steps")))
    _wrap(model, "evaluate", make("evaluate", ("steps",)))
    _wrap(model, "predict", make("predict", ("steps",)))
    _add_method(model, "fit_generator", _fit_generator)
    _add_method(model, "evaluate_generator", _evaluate_generator)
    _add_method(model, "predict_generator", _predict_generator)
    _add_method(keras.Sequential, "predict_classes", _predict_classes)
    _add_method(keras.Sequential, "predict_proba", _predict_proba)


def _training_arguments(method: str, steps: tuple[str, ...], args: tuple, kwargs: dict):
    if not (kwargs or args):
        return args, kwargs
    kwargs = dict(kwargs)
    if method == "fit" and "nb_epoch" in kwargs and "epochs" not in kwargs:
        kwargs["epochs"] = kwargs.pop("nb_epoch")
        _renamed("fit(nb_epoch=...)", "nb_epoch", "epochs")
    for name in _LOADING_ARGUMENTS:
        if name in kwargs:
            kwargs.pop(name)
            _report(f"{method}({name}=...)", f"used the removed argument `{name}` (it only set "
                    "how batches were loaded); ignored")
    for name in steps:
        value = kwargs.get(name)
        if isinstance(value, float) and not value.is_integer() and value > 0:
            # Keras 2 looped `while step < steps_per_epoch`: a fractional count ran ceil() steps.
            kwargs[name] = math.ceil(value)
            _report(f"{method}({name}=<fraction>)", f"passed `{name}={value:g}`, not a whole "
                    f"number; graded as {kwargs[name]}, the steps Keras 2 ran")
        elif isinstance(value, float) and value.is_integer():
            kwargs[name] = int(value)
    if args and _is_plain_iterator(args[0]):
        args = (_as_generator(args[0]),) + tuple(args[1:])
        _report(f"{method}(<iterator>)", "passed an iterator that is not a generator (such as "
                "`zip(...)`), which Keras 3 refuses; graded as a generator over it")
    for name in ("x", "validation_data"):
        if _is_plain_iterator(kwargs.get(name)):
            kwargs[name] = _as_generator(kwargs[name])
            _report(f"{method}(<iterator>)", "passed an iterator that is not a generator (such "
                    "as `zip(...)`), which Keras 3 refuses; graded as a generator over it")
    return args, kwargs


def _is_plain_iterator(value: Any) -> bool:
    """An iterator that tf.keras 2 trained on but Keras 3 refuses (it takes only generators)."""
    if value is None or isinstance(value, types.GeneratorType):
        return False
    if not (hasattr(type(value), "__next__") and hasattr(type(value), "__iter__")):
        return False
    py_dataset = _state.py_dataset if _state is not None else None
    return py_dataset is None or not isinstance(value, py_dataset)


def _as_generator(iterator):
    yield from iterator


def _batch_size(data) -> int | None:
    size = getattr(data, "batch_size", None)
    return size if _is_int(size) and size > 0 else None


def _peek_batch_size(generator) -> tuple[int | None, Any]:
    """Batch size of a Python generator's first batch, and the generator with it put back."""
    if not hasattr(generator, "__next__"):
        return None, generator
    first = next(generator)
    inputs = first[0] if isinstance(first, tuple) else first
    try:
        size = len(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)
    except TypeError:
        size = None

    def replay():
        yield first
        yield from generator

    return size, replay()


def _steps_from_samples(data, samples, old: str, new: str, method: str):
    """Keras 1 counted samples, Keras 2+ counts batches: steps = ceil(samples / batch size)."""
    size = _batch_size(data)
    if size is None:
        size, data = _peek_batch_size(data)
    if size:
        steps = math.ceil(samples / size)
        _report(f"{method}({old}=...)", f"used the removed argument `{old}={samples}`; graded "
                f"as `{new}={steps}` ({samples} samples in batches of {size})")
        return steps, data
    _report(f"{method}({old}=...)", f"used the removed argument `{old}`; its batch size "
            "could not be read, so it was not mapped", severity="warning")
    return None, data


def _generator_arguments(kwargs: dict) -> dict:
    """Drop the Keras 1/2 generator-method arguments that fit/evaluate/predict lack."""
    for name in ("max_q_size", "nb_worker", "pickle_safe", *_LOADING_ARGUMENTS):
        kwargs.pop(name, None)  # loading details only; the method-level finding covers them
    return kwargs


def _fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=None,
                   validation_data=None, validation_steps=None, validation_freq=1,
                   class_weight=None, max_queue_size=10, workers=1, use_multiprocessing=False,
                   shuffle=True, initial_epoch=0, **legacy):
    """Keras 2's ``fit_generator``: ``fit`` on a generator (Keras 1 arguments also accepted)."""
    _report("fit_generator", "used the removed method `fit_generator`; graded as `fit`")
    legacy = _generator_arguments(legacy)
    if "nb_epoch" in legacy:
        epochs = legacy.pop("nb_epoch")
        _renamed("fit_generator(nb_epoch=...)", "nb_epoch", "epochs")
    if "samples_per_epoch" in legacy and steps_per_epoch is None:
        steps_per_epoch, generator = _steps_from_samples(
            generator, legacy.pop("samples_per_epoch"), "samples_per_epoch", "steps_per_epoch",
            "fit_generator")
    if "nb_val_samples" in legacy:
        samples = legacy.pop("nb_val_samples")
        if validation_steps is None and hasattr(validation_data, "__next__"):
            validation_steps, validation_data = _steps_from_samples(
                validation_data, samples, "nb_val_samples", "validation_steps", "fit_generator")
    if legacy:
        raise TypeError(f"fit_generator() got unexpected keyword arguments {sorted(legacy)}")
    if _is_plain_iterator(generator):
        generator = _as_generator(generator)
    if _is_plain_iterator(validation_data):
        validation_data = _as_generator(validation_data)
    # Keras 2 shuffled only a Sequence's batch order; for a generator Keras 3 would warn.
    shuffle = shuffle and isinstance(generator, _state.py_dataset)
    return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=verbose,
                    callbacks=callbacks, validation_data=validation_data,
                    validation_steps=validation_steps, validation_freq=validation_freq,
                    class_weight=class_weight, shuffle=shuffle, initial_epoch=initial_epoch)


def _evaluate_generator(self, generator, steps=None, callbacks=None, max_queue_size=10, workers=1,
                        use_multiprocessing=False, verbose=0, **legacy):
    """Keras 2's ``evaluate_generator``: ``evaluate`` on a generator."""
    _report("evaluate_generator", "used the removed method `evaluate_generator`; graded as "
            "`evaluate`")
    steps, generator = _generator_steps("evaluate_generator", generator, steps, legacy)
    return self.evaluate(generator, steps=steps, callbacks=callbacks, verbose=verbose)


def _predict_generator(self, generator, steps=None, callbacks=None, max_queue_size=10, workers=1,
                       use_multiprocessing=False, verbose=0, **legacy):
    """Keras 2's ``predict_generator``: ``predict`` on a generator."""
    _report("predict_generator", "used the removed method `predict_generator`; graded as "
            "`predict`")
    steps, generator = _generator_steps("predict_generator", generator, steps, legacy)
    return self.predict(generator, steps=steps, callbacks=callbacks, verbose=verbose)


def _generator_steps(method: str, generator, steps, legacy: dict):
    legacy = _generator_arguments(legacy)
    if "val_samples" in legacy and steps is None:
        steps, generator = _steps_from_samples(
            generator, legacy.pop("val_samples"), "val_samples", "steps", method)
    if legacy:
        raise TypeError(f"{method}() got unexpected keyword arguments {sorted(legacy)}")
    if _is_plain_iterator(generator):
        generator = _as_generator(generator)
    return steps, generator


def _predict_classes(self, x, batch_size=32, verbose=0):
    """Keras 2's ``Sequential.predict_classes``: argmax, or ``> 0.5`` for one output unit."""
    _report("predict_classes", "used the removed method `predict_classes`; graded as "
            "`predict(x).argmax(axis=-1)` (or `> 0.5` for a single output unit)")
    probabilities = self.predict(x, batch_size=batch_size, verbose=verbose)
    if probabilities.shape[-1] > 1:
        return probabilities.argmax(axis=-1)
    return (probabilities > 0.5).astype("int32")


def _predict_proba(self, x, batch_size=32, verbose=0):
    """Keras 2's ``Sequential.predict_proba``: ``predict``."""
    _report("predict_proba", "used the removed method `predict_proba`; graded as `predict`")
    return self.predict(x, batch_size=batch_size, verbose=verbose)


# --- ImageDataGenerator iterators ----------------------------------------------------------------


def _install_iterator_next() -> None:
    from keras.src.legacy.preprocessing.image import Iterator

    def next(self):  # noqa: A001  (the Keras 2 method's name)
        """Keras 2's ``Iterator.next()``: the next batch, like ``next(iterator)``."""
        _report("iterator.next()", "used the removed method `.next()`; graded as `next(iterator)`")
        return self.__next__()

    _add_method(Iterator, "next", next)


# --- Keras 1 layer arguments ---------------------------------------------------------------------

_DIM_ORDERING = {"tf": "channels_last", "th": "channels_first", "default": None}
_WEIGHTS = {
    "init": "kernel_initializer", "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer", "W_constraint": "kernel_constraint",
    "b_constraint": "bias_constraint", "bias": "use_bias",
}
_CONV = {"nb_filter": "filters", "subsample": "strides", "border_mode": "padding",
         "dim_ordering": "data_format", **_WEIGHTS}
_POOL = {"border_mode": "padding", "dim_ordering": "data_format"}
_POOL1D = {"pool_length": "pool_size", "stride": "strides", "border_mode": "padding"}
_ORDERING = {"dim_ordering": "data_format"}
# Keras 1 argument name -> Keras 3 name, per layer class (the renames Keras 2.0 itself accepted).
_LAYER_RENAMES: dict[str, dict[str, str]] = {
    "Dense": {"output_dim": "units", **_WEIGHTS},
    "Conv1D": {"nb_filter": "filters", "filter_length": "kernel_size",
               "subsample_length": "strides", "border_mode": "padding", **_WEIGHTS},
    "Conv2D": _CONV, "Conv3D": _CONV,
    "MaxPooling1D": _POOL1D, "AveragePooling1D": _POOL1D,
    "MaxPooling2D": _POOL, "AveragePooling2D": _POOL,
    "MaxPooling3D": _POOL, "AveragePooling3D": _POOL,
    "GlobalMaxPooling2D": _ORDERING, "GlobalAveragePooling2D": _ORDERING,
    "ZeroPadding2D": _ORDERING, "UpSampling2D": _ORDERING, "Cropping2D": _ORDERING,
    "Dropout": {"p": "rate"}, "SpatialDropout1D": {"p": "rate"},
    "SpatialDropout2D": {"p": "rate", **_ORDERING}, "GaussianDropout": {"p": "rate"},
    "GaussianNoise": {"sigma": "stddev"},
    "BatchNormalization": {"beta_init": "beta_initializer", "gamma_init": "gamma_initializer"},
    "Embedding": {"init": "embeddings_initializer", "W_regularizer": "embeddings_regularizer",
                  "W_constraint": "embeddings_constraint"},
}
# Keras 1 and 2 defaults that Keras 3 removed (the argument became required).
_REMOVED_DEFAULTS = {"AveragePooling1D": ("pool_size", 2),
                     "AveragePooling2D": ("pool_size", (2, 2)),
                     "AveragePooling3D": ("pool_size", (2, 2, 2))}
# Keras 1 gave a convolution's kernel as separate numbers: Convolution2D(32, 3, 3).
_KERNEL_PARTS = {"Conv2D": ("nb_row", "nb_col"),
                 "Conv3D": ("kernel_dim1", "kernel_dim2", "kernel_dim3")}


def _install_layers() -> None:
    import keras
    from keras.src.models.functional import Functional

    for class_name in _LAYER_RENAMES:
        cls = getattr(keras.layers, class_name)
        _wrap(cls, "__init__", functools.partial(_make_layer_init, class_name))

    # Keras 1 built functional models with Model(input=..., output=...). Model.__new__ decides
    # from the keywords whether the object is a Functional, and type.__call__ then passes the
    # same keywords to Functional.__init__: both need the translation.
    new = vars(keras.Model)["__new__"].__func__

    @functools.wraps(new)
    def __new__(cls, *args, **kwargs):
        return new(cls, *args, **_model_arguments(kwargs, report=False))

    _set(keras.Model, "__new__", staticmethod(__new__))

    def make_init(original: Callable) -> Callable:
        def __init__(self, *args, **kwargs):
            return original(self, *args, **_model_arguments(kwargs, report=True))

        return __init__

    _wrap(Functional, "__init__", make_init)


def _model_arguments(kwargs: dict, report: bool) -> dict:
    if "input" not in kwargs and "output" not in kwargs:
        return kwargs
    kwargs = dict(kwargs)
    for old, new in (("input", "inputs"), ("output", "outputs")):
        if old in kwargs and new not in kwargs:
            kwargs[new] = kwargs.pop(old)
            if report:
                _renamed(f"Model({old}=...)", old, new)
    return kwargs


def _make_layer_init(class_name: str, original: Callable) -> Callable:
    renames = _LAYER_RENAMES[class_name]
    parts = _KERNEL_PARTS.get(class_name, ())

    def __init__(self, *args, **kwargs):
        if kwargs.keys() & renames.keys() or parts and (kwargs.keys() & set(parts)
                                                        or len(args) == len(parts) + 1):
            args, kwargs = _layer_arguments(class_name, renames, parts, args, kwargs)
        if class_name == "BatchNormalization" and kwargs.get("mode") == 0:
            kwargs = {k: v for k, v in kwargs.items() if k != "mode"}
            _report("BatchNormalization(mode=0)", "used the removed argument `mode=0` (the "
                    "only mode Keras 3 has); dropped")
        if class_name in _REMOVED_DEFAULTS and not args:
            name, value = _REMOVED_DEFAULTS[class_name]
            if name not in kwargs:
                kwargs = {**kwargs, name: value}
                _report(f"{class_name}()", f"relied on the default `{name}={value}`, which "
                        f"Keras 3 no longer has; graded as `{name}={value}`")
        return original(self, *args, **kwargs)

    return __init__


def _layer_arguments(class_name: str, renames: dict, parts: tuple, args: tuple, kwargs: dict):
    kwargs = dict(kwargs)
    keras1 = bool(kwargs.keys() & (renames.keys() | set(parts)))
    if parts:
        args = _kernel_from_parts(class_name, parts, args, kwargs, keras1)
    for old, new in renames.items():
        if old not in kwargs or new in kwargs:
            continue  # both spellings given: ambiguous, leave Keras 3's error
        value = kwargs[old]
        if old == "dim_ordering":
            if value not in _DIM_ORDERING:
                continue
            kwargs.pop(old)
            kwargs[new] = _DIM_ORDERING[value]
            _report(f"{class_name}(dim_ordering={value!r})",
                    f"used the removed argument `dim_ordering={value!r}`; graded as "
                    f"`data_format={kwargs[new]!r}`")
            continue
        kwargs[new] = kwargs.pop(old)
        _renamed(f"{class_name}({old}=...)", old, new)
    return args, kwargs


def _kernel_from_parts(class_name, parts, args, kwargs, keras1) -> tuple:
    """Convolution2D(32, 3, 3) / nb_row=, nb_col= -> kernel_size=(3, 3), Keras 1 style."""
    positional = list(args[1:])
    named = parts[len(positional):]  # Keras 1 allowed the trailing parts as keywords
    if len(positional) > len(parts) or not all(p in kwargs for p in named):
        return args
    numbers = positional + [kwargs[p] for p in named]
    if not all(map(_is_int, numbers)):
        return args
    if len(args) == len(parts) + 1 and not keras1:
        # Conv2D(32, 3, 3) alone: Keras 1 meant a 3x3 kernel, tf.keras 2 and Keras 3 mean
        # kernel_size=3, strides=3. Only a Keras-1-only argument in the same call decides it.
        keras3 = ", ".join(("filters", "kernel_size", "strides", "padding")[:len(parts) + 1])
        _report(f"{class_name}(filters, {', '.join(map(str, numbers))})",
                f"passed {len(parts) + 1} positional numbers: Keras 3 (like tf.keras 2) reads "
                f"them as `{keras3}`, Keras 1 as filters and a kernel of "
                f"{'x'.join(map(str, numbers))}. Not changed; write "
                f"`{class_name}({args[0]}, ({', '.join(map(str, numbers))}))` for that kernel",
                severity="warning")
        return args
    if "kernel_size" in kwargs:
        return args
    for p in parts:
        kwargs.pop(p, None)
    kwargs["kernel_size"] = tuple(numbers)
    _report(f"{class_name}(nb_filter, {', '.join(parts)})",
            f"gave the kernel as separate numbers ({', '.join(parts)}), as Keras 1 did; graded as "
            f"`kernel_size={tuple(numbers)}`")
    return args[:1]


# --- removed module paths and names ----------------------------------------------------------

_TF_KERAS = "keras._tf_keras.keras"
# Old module path -> the Keras 3 module whose names it held.
_MODULE_ALIASES = {
    **{f"keras.layers.{old}": "keras.layers" for old in (
        "core", "convolutional", "pooling", "normalization", "advanced_activations",
        "embeddings", "merge", "noise", "recurrent", "wrappers", "local",
        "convolutional_recurrent")},
    # tf.keras 2.3-2.5 kept the preprocessing layers here before they became keras.layers.*
    **{f"{root}.layers.experimental{sub}": "keras.layers"
       for root in ("keras", _TF_KERAS, "tensorflow.keras") for sub in ("", ".preprocessing")},
    **{f"keras.utils.{old}": "keras.utils" for old in (
        "np_utils", "vis_utils", "data_utils", "generic_utils", "layer_utils")},
    "keras.preprocessing.text": f"{_TF_KERAS}.preprocessing.text",
}
# Modules of standalone Keras 3 that lost names tf.keras (TF's Keras 2 compatible API) still has.
_FILLED_FROM_TF_KERAS = ("keras.backend", "keras.layers", "keras.preprocessing.image",
                         "keras.preprocessing.sequence")


def _install_module_paths() -> None:
    for old, new in _MODULE_ALIASES.items():
        parent, _, leaf = old.rpartition(".")
        if old in sys.modules or _module_exists(old):
            continue
        module = _AliasModule(old, new)
        sys.modules[old] = module
        _state.modules.append(old)
        # `import keras.layers.core` then `keras.layers.core.Dense` needs the parent attribute.
        parent_module = sys.modules.get(parent)
        if isinstance(parent_module, _AliasModule):
            parent_module.__dict__[leaf] = module
        elif parent_module is not None and not hasattr(parent_module, leaf):
            _missing(parent, leaf, lambda m=module: m)
    _install_backend_set_value()
    for module_name in _FILLED_FROM_TF_KERAS:
        source = sys.modules.get(_TF_KERAS + module_name[len("keras"):])
        target = sys.modules.get(module_name)
        if source is None or target is None:
            continue
        for name in dir(source):
            if not name.startswith("_") and not hasattr(target, name):
                _missing(module_name, name, _resolved(
                    lambda s=source, n=name: getattr(s, n), f"{module_name}.{name}",
                    f"used `{module_name}.{name}`, removed from Keras 3; graded with "
                    f"`tf.keras{module_name[len('keras'):]}.{name}`, its Keras 2 version"))


def _install_backend_set_value() -> None:
    """``K.set_value(model.optimizer.lr, 0.001)``: tf.keras' legacy version reads
    ``x.dtype.name``, which a Keras 3 variable (dtype is a string) lacks; assign directly."""
    backend = sys.modules.get(f"{_TF_KERAS}.backend")
    original = getattr(backend, "set_value", None)
    if original is None:
        return
    from keras.src.backend.common.variables import Variable as KerasVariable

    @functools.wraps(original)
    def set_value(x, value):
        if isinstance(x, KerasVariable):
            import numpy

            x.assign(numpy.asarray(value, dtype=x.dtype))
            return None
        return original(x, value)

    _set(backend, "set_value", set_value)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


class _AliasModule(types.ModuleType):
    """A module path Keras 3 removed; its names resolve in the module that holds them now."""

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name, f"Removed Keras module; names resolve in `{target}`.")
        self.__compat_target__ = target

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__compat_target__)
        if name == "__all__":  # `from keras.layers.core import *`
            return [n for n in dir(module) if not n.startswith("_")]
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            value = getattr(module, name)
        except AttributeError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None
        _report(f"import {self.__name__}", f"imported from the removed module `{self.__name__}`; "
                f"graded as `{self.__compat_target__}`")
        return value


def _resolved(get: Callable[[], Any], api: str, message: str) -> Callable[[], Any]:
    def resolve():
        value = get()
        _report(api, message)
        return value

    return resolve


def _missing(module_name: str, name: str, resolve: Callable[[], Any]) -> None:
    """Let ``module_name.name`` resolve, through the module's __getattr__, to ``resolve()``."""
    module = sys.modules.get(module_name)
    if module is not None:  # one module can be in sys.modules under two names (tensorflow.keras)
        _state.missing.setdefault(id(module), (module, {}))[1][name] = resolve


def _install_module_getattr(module: types.ModuleType, names: dict[str, Callable[[], Any]]) -> None:
    previous = vars(module).get("__getattr__")

    def __getattr__(name: str) -> Any:
        if name in names:
            return names[name]()
        if previous is not None:
            return previous(name)
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    setattr(__getattr__, _MARK, True)
    _set(module, "__getattr__", __getattr__)


# --- plot_model without pydot/graphviz -------------------------------------------------------


def _install_plot_model() -> None:
    from keras.src.utils import model_visualization

    original = model_visualization.plot_model

    @functools.wraps(original)
    def plot_model(model, *args, **kwargs):
        if not model_visualization.check_graphviz():
            _report("plot_model", "called `plot_model`, but pydot or the graphviz program is not "
                    "installed where the grader runs; skipped (the diagram is not graded)")
            return None
        return original(model, *args, **kwargs)

    setattr(plot_model, _MARK, True)
    for module_name in ("keras.src.utils.model_visualization", "keras.src.utils", "keras.utils",
                        f"{_TF_KERAS}.utils"):
        module = sys.modules.get(module_name)
        if module is not None and vars(module).get("plot_model") is original:
            _set(module, "plot_model", plot_model)


# --- old course notebooks: TF1 seeding, TensorBoard without tensorboard ----------------------


def _install_old_course_apis() -> None:
    tf = sys.modules.get("tensorflow")
    if tf is not None and "set_random_seed" not in vars(tf) and hasattr(tf, "random"):
        def set_random_seed(seed):
            _report("tf.set_random_seed", "used TF1's `tf.set_random_seed`; graded as `tf.random.set_seed`")
            return tf.random.set_seed(seed)

        setattr(set_random_seed, _MARK, True)
        _set(tf, "set_random_seed", set_random_seed)
    if _module_exists("tensorboard"):
        return
    import keras

    board = keras.callbacks.TensorBoard
    # Without the tensorboard package the callback cannot write logs; training must still run,
    # so its hooks do nothing (the class stays Keras' own: isinstance still holds).
    for name in [n for n in vars(board) if n.startswith("on_") or n in ("set_model", "set_params")]:
        _wrap(board, name, lambda original: _tensorboard_noop)


def _tensorboard_noop(self, *args, **kwargs):
    _report("TensorBoard", "used a `TensorBoard` callback, but tensorboard is not installed where the grader "
            "runs; the callback did nothing (training ran as written, no logs were written)")
    return None


# --- Colab-only code: neutralised, reported, never an error -----------------------------------

_colab_report: Report | None = None
_COLAB_LINE = __import__("re").compile(r"^(\s*)(?:!|%)\s*(pip|apt-get|apt|tensorflow_version)\b(.*)$")


def install_colab(report: Report, shell: Any = None) -> None:
    """Make Colab-only code harmless in an ordinary kernel: ``from google.colab import drive``
    gives stubs whose calls (``drive.mount``, ``files.upload``) do nothing, and ``!pip install``
    / ``%tensorflow_version`` lines are skipped. Each use is reported once as a finding.
    Independent of Keras, so it is installed before the first cell."""
    global _colab_report
    first = _colab_report is None
    _colab_report = report
    if not first:
        return
    if not _module_exists("google.colab"):
        sys.meta_path.insert(0, _ColabFinder())
    if shell is not None:
        shell.input_transformers_cleanup.append(_skip_colab_lines)


def _colab_skipped(what: str) -> None:
    seen = globals().setdefault("_colab_seen", set())
    if _colab_report is None or what in seen:
        return
    seen.add(what)
    try:
        _colab_report({"kind": "compat", "api": f"colab: {what}", "severity": "info",
                       "message": f"Colab-only code skipped: {what} (it has no meaning where the grader runs)"})
    except Exception:
        pass


def _skip_colab_lines(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        match = _COLAB_LINE.match(line)
        if match:
            what = f"{line.strip()[:1]}{match.group(2)}{match.group(3).rstrip()[:40]}"
            out.append(f"{match.group(1)}__import__('sys').modules[{__name__!r}]._colab_skipped({what!r})\n")
        else:
            out.append(line)
    return out


class _ColabStub(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        qualified = f"{self.__name__.rpartition('.')[2]}.{name}"

        def skipped(*args, **kwargs):
            _colab_skipped(qualified)
            return {} if name == "upload" else None

        return skipped


class _ColabFinder:
    """Finds ``google.colab`` and its submodules, as stubs, where Colab is not installed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "google.colab" or fullname.startswith("google.colab."):
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _ColabStub(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        if module.__name__ == "google.colab":
            for sub in ("drive", "files", "output", "auth", "patches"):
                module.__dict__[sub] = importlib.import_module(f"google.colab.{sub}")
