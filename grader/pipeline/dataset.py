"""The batch's dataset, prepared once as an ``.npz`` file that every kernel reads."""

from __future__ import annotations

from pathlib import Path

from grader import __version__
from grader.errors import DatasetError

__all__ = ["prepared_dataset"]


def prepared_dataset(name: str, source: str, train_size: int | None, test_size: int | None, *,
                      cache: Path, target: Path) -> tuple[Path, list[str]]:
    """The batch's data as ``target/<name>-<content fingerprint>.npz``, and its class names.

    Prepared once and kept in ``cache`` (the output folder's store), keyed by what it is made
    from, so the next batch on the same folder (a re-grade after a rubric change) does not make
    it again. Data read from the Keras cache is read by Keras in a child process: the grader's
    own process never imports TensorFlow (seconds and half a gigabyte). The cache folder's name
    starts with a dot: it is not an entry of the store."""
    import hashlib
    import json
    import os
    import shutil
    import subprocess
    import sys

    from grader.data.registry import keras_cache_dir, spec

    stamp: list = []
    if source in ("auto", "keras-cache"):
        for entry in (keras_cache_dir() / f for f in spec(name).cache_files):
            files = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry] if entry.is_file() else []
            stamp += [[str(file), file.stat().st_size, file.stat().st_mtime_ns] for file in files]
    elif source != "synthetic" and Path(source).is_file():
        info = Path(source).stat()
        stamp.append([str(Path(source).resolve()), info.st_size, info.st_mtime_ns])
    elif source != "synthetic" and Path(source).is_dir():
        # An image folder: an image replaced or added is a different dataset, not the cached one.
        for file in sorted(p for p in Path(source).resolve().rglob("*") if p.is_file()):
            info = file.stat()
            stamp.append([str(file), info.st_size, info.st_mtime_ns])
    inputs = json.dumps([__version__, name, source, train_size, test_size, stamp], sort_keys=True)
    stored = cache / f"{name}-{hashlib.sha256(inputs.encode()).hexdigest()[:20]}"
    meta_path, data_path = stored.with_suffix(".json"), stored.with_suffix(".npz")
    try:
        meta = json.loads(meta_path.read_text()) if data_path.is_file() else None
    except (OSError, ValueError):
        meta = None
    if meta is None:
        cache.mkdir(parents=True, exist_ok=True)
        # Beside the cache, where the store removes what a killed batch left (ResultStore.clean_leftovers).
        partial = cache.parent / f".tmp-{stored.name}-{os.getpid()}.npz"
        partial.unlink(missing_ok=True)
        if source in ("auto", "keras-cache"):
            child = ("import json, sys\nfrom pathlib import Path\nfrom grader.data.load import load_dataset\n"
                     "from grader.errors import DatasetError\nname, source, train, test, out = sys.argv[1:]\n"
                     "try:\n    d = load_dataset(name, source=source, train_size=int(train) or None, test_size=int(test) or None)\n"
                     "except DatasetError as exc:\n    print(json.dumps({'error': str(exc)})); sys.exit(0)\n"
                     "d.save_npz(Path(out))\n"
                     "print(json.dumps({'fingerprint': d.fingerprint(), 'class_names': list(d.class_names)}))\n")
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                       PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])))
            done = subprocess.run([sys.executable, "-c", child, name, source, str(train_size or 0), str(test_size or 0), str(partial)],
                                  capture_output=True, text=True, env=env)
            try:
                meta = json.loads(done.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise DatasetError(f"{name} could not be read from the Keras cache: {done.stderr.strip()[-500:]}") from None
            if "error" in meta:
                raise DatasetError(meta["error"])
        else:
            from grader.data.load import load_dataset  # NumPy: only a batch that prepares data imports it

            data = load_dataset(name, source=source, train_size=train_size, test_size=test_size)
            data.save_npz(partial)
            meta = {"fingerprint": data.fingerprint(), "class_names": list(data.class_names)}
        os.chmod(partial, 0o444)  # shared by the batches' kernels through links: nobody writes it
        os.replace(partial, data_path)
        meta_path.write_text(json.dumps(meta))
    path = target / f"{name}-{meta['fingerprint']}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(data_path, path)  # the kernels read it; nobody writes it
    except OSError:
        shutil.copyfile(data_path, path)
    return path, list(meta.get("class_names") or [])
