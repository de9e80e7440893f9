"""Datasets: the registry of named datasets, and loading the grader's copies of them.

:mod:`grader.data.registry` (the :class:`~grader.data.registry.DatasetSpec` registry: the
Keras datasets, and where to register others), :mod:`grader.data.load` (:func:`load_dataset`
from the datasets folder, an ``.npz``, an image folder or synthetic data; :func:`check_source`),
:mod:`grader.data.dataset` (the loaded splits, subsets), :mod:`grader.data.npz` (reading and
checking ``.npz`` files), :mod:`grader.data.image_folder` (``train/<class>/*.jpg`` folders),
:mod:`grader.data.synthetic` (stand-ins for tests and self-checks). Nothing is imported here,
so the rubric can read the registry without numpy.
"""
