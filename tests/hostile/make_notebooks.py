"""Writes the hostile notebooks of ``tests/hostile/notebooks/`` (committed; this script documents
how they were made and rebuilds them after a change).

    python tests/hostile/make_notebooks.py

Each notebook attacks the grader one way, the way a student who wants a better grade might. The
ones that need to know where things are (the output folder, a secret file) read the paths from
``NN_HOSTILE_*`` environment variables the test sets: a real attacker would guess them, and the
test must not depend on the guess. Every notebook that gets past its attack sets ``answer = 42``
and ``leaked`` (what it managed to read, or "nothing"), which the test rubric grades.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.nbfactory import LOAD_CIFAR, SMALL_CNN, code, md, notebook, write  # noqa: E402

FINISH = 'answer = 42\nleaked = "nothing"'
# 56 + 30 = 86 parameters: within Question 1's limit of 1,000.
TINY_CNN = """tiny = keras.Sequential([
    keras.Input((32, 32, 3)),
    keras.layers.Conv2D(2, (3, 3), activation="relu"),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(10, activation="softmax"),
])
tiny.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])"""
TARGETS = ('import json, os\nTARGETS = json.loads(os.environ.get("NN_HOSTILE_TARGETS", "[]"))\n'
           'TOKEN = os.environ.get("NN_HOSTILE_TOKEN", "HOSTILE")')
SECRETS = 'import json, os\nSECRETS = json.loads(os.environ.get("NN_HOSTILE_SECRETS", "[]"))'

NOTEBOOKS = {
    "control": notebook(md("# An ordinary submission"), code(FINISH)),
    "infinite_loop": notebook(md("# A loop that never ends"), code("while True:\n    pass"), code(FINISH)),
    "ignores_interrupt": notebook(
        md("# A loop that swallows the interrupt"),
        code("import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"),
        code(FINISH)),
    "fork_bomb": notebook(md("# A fork bomb"), code("answer = 42"), code("import os\nwhile True:\n    os.fork()"),
                          code('leaked = "nothing"')),
    "allocate_100gib": notebook(
        md("# Allocating 100 GiB"), code("answer = 42"),
        code("import numpy as np\nchunks = []\nfor _ in range(400):  # 400 x 256 MiB = 100 GiB\n"
             "    chunks.append(np.ones(256 * 2**20 // 8))"),
        code('leaked = "nothing"')),
    "os_exit": notebook(md("# os._exit in the middle"), code("answer = 42"), code("import os\nos._exit(0)"),
                        code('leaked = "nothing"')),
    "sys_exit": notebook(md("# sys.exit in the middle"), code("answer = 42"), code("import sys\nsys.exit()"),
                         code('leaked = "nothing"')),
    "kill_parent": notebook(
        md("# Killing the process that runs the kernel"),
        code("import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
             "except OSError as exc:\n    print(exc)"),
        code(FINISH)),
    "write_outside": notebook(
        md("# Writing outside the working folder"),
        code(TARGETS + "\nwritten = []\nfor folder in TARGETS + ['..', '../..', '~', '/tmp', '/']:\n"
             "    path = os.path.join(os.path.expanduser(folder), TOKEN)\n"
             "    try:\n        with open(path, 'w') as f:\n            f.write('written by a notebook')\n"
             "        written.append(path)\n    except OSError:\n        pass\nprint(written)"),
        code(FINISH)),
    "read_secrets": notebook(
        md("# Reading what the grader keeps: ~/.ssh, the rubric, the hidden test set, classmates' notebooks"),
        code(SECRETS + "\nfound = []\nfor path in SECRETS + [os.path.expanduser('~/.ssh')]:\n"
             "    try:\n        if os.path.isdir(path):\n            found.append(f'{path}: {os.listdir(path)}')\n"
             "        else:\n            with open(path, 'rb') as f:\n                found.append(f'{path}: {f.read(200)!r}')\n"
             "    except OSError:\n        pass\nprint(found)"),
        code('answer = 42\nleaked = "; ".join(found) or "nothing"')),
    "network": notebook(
        md("# Opening network connections"),
        code("import os, socket\nreached = []\nhost_port = int(os.environ.get('NN_HOSTILE_PORT', '9'))\n"
             "for host, port in [('127.0.0.1', host_port), ('1.1.1.1', 80), ('pypi.org', 443)]:\n"
             "    try:\n        socket.create_connection((host, port), timeout=2).close()\n        reached.append(host)\n"
             "    except OSError:\n        pass\nprint(reached)"),
        code('answer = 42\nleaked = ", ".join(reached) or "nothing"')),
    "steal_bundle": notebook(
        md("# Handing in a classmate's recorded run"), code(FINISH),
        code("import os, shutil\nruns = os.path.dirname(os.getcwd())  # the kernel knows where the grader keeps every run\n"
             "shutil.rmtree('.nn-grader/bundle')\n"
             "os.symlink(os.path.join(runs, '.sealed', 'control'), '.nn-grader/bundle')")),
    "print_200mb": notebook(md("# Printing 200 MB"), code("line = 'x' * (2**20 - 1)\nfor _ in range(200):\n    print(line)"),
                            code(FINISH)),
    "script_output": notebook(
        md("# Output that carries a script"),
        md('## Question 1\n<script>alert("nn-grader-hostile")</script>'),
        code('print(\'<script>alert("nn-grader-hostile")</script>\')\n'
             'from IPython.display import HTML, display\ndisplay(HTML(\'<script>alert("nn-grader-hostile")</script>\'))'),
        code('raise ValueError(\'<script>alert("nn-grader-hostile")</script>\')'),
        code('answer = 42\nleaked = \'<script>alert("nn-grader-hostile")</script>\'')),
    # The three below import Keras (graded by the slow test with the Keras rubric).
    "fake_counts": notebook(
        md("# A model that reports fake counts"), code(LOAD_CIFAR),
        code("keras.Model.count_params = lambda self: 42\n"
             "keras.Model.summary = lambda self, *a, **k: print('Total params: 42')\n"
             + SMALL_CNN + "\nmodel = CreateCNNModel()\nmodel.summary()\nprint(model.count_params())\n"
             "history = model.fit(x_train, y_train, epochs=1, verbose=0)"),
        md("## Question 1\nTrain a CNN with at most 1,000 parameters."),
        code("print(model.count_params(), 'parameters')")),
    "deleted_questions": notebook(
        md("# The question cells were deleted"), code(LOAD_CIFAR),
        code(SMALL_CNN + "\nmodel = CreateCNNModel()\nhistory = model.fit(x_train, y_train, epochs=1, verbose=0)")),
    "reordered_questions": notebook(
        md("# The question cells were moved around"),
        md("## Question 2\nTrain a second CNN."),
        md("## Question 1\nTrain a CNN with at most 1,000 parameters."),
        code(LOAD_CIFAR),
        code(SMALL_CNN + "\nmodel = CreateCNNModel()\nhistory = model.fit(x_train, y_train, epochs=1, verbose=0)")),
    "keras_control": notebook(
        md("# An ordinary Keras submission"), code(LOAD_CIFAR),
        code(TINY_CNN + "\nhistory = tiny.fit(x_train, y_train, epochs=1, verbose=0)"),
        md("## Question 1\nTrain a CNN with at most 1,000 parameters."),
        code(SMALL_CNN + "\nmodel = CreateCNNModel()\nhistory = model.fit(x_train, y_train, epochs=1, verbose=0)"),
        md("## Question 2\nTrain a second CNN.")),
}


def main() -> None:
    for name, nb in NOTEBOOKS.items():
        for index, cell in enumerate(nb.cells):
            cell.id = f"{name.replace('_', '-')}-{index}"  # stable: a rebuild changes only what changed
        write(nb, HERE / "notebooks" / f"{name}.ipynb")
    print(f"wrote {len(NOTEBOOKS)} notebooks to {HERE / 'notebooks'}")


if __name__ == "__main__":
    main()
