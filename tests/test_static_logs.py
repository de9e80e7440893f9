"""Training logs and test scores read from saved outputs (grader.static.logs)."""

from __future__ import annotations

import pytest

from grader.static.logs import parse_logs_and_scores, parse_test_scores, parse_training_log, render_terminal

# Seed 002 (a Keras 2.0 lecture): fit_generator's log, epochs 5-28 left out by the slides.
SEED_002_LOG = """\
Epoch 1/30  
100/100 [=====] - 9s - loss: 0.6898 - acc: 0.5285 - val_loss: 0.6724 - val_acc: 0.5950  
Epoch 2/30  
100/100 [=====] - 8s - loss: 0.6543 - acc: 0.6340 - val_loss: 0.6565 - val_acc: 0.5950  
Epoch 3/30  
100/100 [=====] - 8s - loss: 0.6143 - acc: 0.6690 - val_loss: 0.6116 - val_acc: 0.6650  
Epoch 4/30  
100/100 [=====] - 8s - loss: 0.5626 - acc: 0.7125 - val_loss: 0.5774 - val_acc: 0.6970
Epoch 29/30  
100/100 [=====] - 8s - loss: 0.0375 - acc: 0.9915 - val_loss: 0.9987 - val_acc: 0.7100  
Epoch 30/30  
100/100 [=====] - 8s - loss: 0.0387 - acc: 0.9895 - val_loss: 1.0139 - val_acc: 0.7240
"""


def keras1_progress(epoch: int, epochs: int, samples: int, batch: int,
                    final: dict[str, float]) -> str:
    """What Keras 1's Progbar wrote for one epoch: every redraw after backspaces and a \\r."""
    out = [f"Epoch {epoch}/{epochs}\n"]
    width = 0
    for seen in range(batch, samples + 1, batch):
        done = seen == samples
        bar = "=" * int(30 * seen / samples)
        bar = (bar[:-1] + ">" if not done and bar else bar).ljust(30, ".")
        text = f"{seen:>{len(str(samples))}}/{samples} [{bar}]"
        if done:
            text += " - 2s - " + " - ".join(f"{k}: {v:.4f}" for k, v in final.items())
        else:
            text += f" - ETA: {samples // seen}s - loss: {9.9 - seen / samples:.4f}"
        out.append("\b" * width + "\r" + text)
        width = len(text)
    out.append("\n")
    return "".join(out)


def test_render_terminal_keeps_the_last_redraw_of_a_progress_bar():
    raw = "Epoch 1/2\n\r 32/64 [=>...] - ETA: 1s - loss: 2.0\b\b\b\b\r64/64 [=====] - loss: 1.5\n"
    assert render_terminal(raw).split("\n")[:2] == ["Epoch 1/2", "64/64 [=====] - loss: 1.5"]


def test_render_terminal_removes_ansi_colours():
    assert render_terminal("\x1b[1m6/6\x1b[0m \x1b[32m━━\x1b[0m - loss: 1.0") == "6/6 ━━ - loss: 1.0"


def test_backspace_deletes_the_character_before_it():
    assert render_terminal("accuracy: 0.51\b\b\b\b0.62") == "accuracy: 0.62"


def test_seed_002_log_gives_one_value_per_shown_epoch():
    (log,) = parse_training_log(SEED_002_LOG)
    assert log.epochs == 30
    assert log.epochs_shown == 6
    assert log.history["acc"] == [0.5285, 0.6340, 0.6690, 0.7125, 0.9915, 0.9895]
    assert log.history["val_acc"][-1] == 0.7240
    assert log.steps == 100


def test_keras1_backspaced_progress_bars_yield_the_epoch_end_values():
    text = "Train on 4000 samples, validate on 1000 samples\n"
    text += keras1_progress(1, 2, 4000, 32, {"loss": 0.51, "acc": 0.83, "val_loss": 0.31,
                                            "val_acc": 0.91})
    text += keras1_progress(2, 2, 4000, 32, {"loss": 0.41, "acc": 0.87, "val_loss": 0.29,
                                            "val_acc": 0.92})
    (log,) = parse_training_log(text)
    assert log.history == {"loss": [0.51, 0.41], "acc": [0.83, 0.87],
                           "val_loss": [0.31, 0.29], "val_acc": [0.91, 0.92]}
    assert (log.train_samples, log.validation_samples) == (4000, 1000)
    assert log.counts_samples


def test_keras3_log_as_saved_by_jupyter():
    raw = (
        "Epoch 1/2\n"
        "\r\x1b[1m1/6\x1b[0m \x1b[32m━━━\x1b[0m\x1b[37m━━━━━━━━━━━━━━━━━\x1b[0m \x1b[1m6s\x1b[0m "
        "1s/step - accuracy: 0.1250 - loss: 2.4185"
        + "\b" * 70 + "\r"
        "\x1b[1m6/6\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m2s\x1b[0m "
        "81ms/step - accuracy: 0.2917 - loss: 2.1894 - val_accuracy: 0.1875 - val_loss: 1.1726\n"
        "Epoch 2/2\n"
        "\x1b[1m6/6\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m 0s 24ms/step - accuracy: 0.3125 "
        "- loss: 2.0487 - val_accuracy: 0.1875 - val_loss: 1.1460\n"
    )
    (log,) = parse_training_log(raw)
    assert log.history["accuracy"] == [0.2917, 0.3125]
    assert log.history["val_loss"] == [1.1726, 1.1460]
    assert log.steps == 6 and not log.counts_samples


def test_verbose_2_lines_without_a_bar_count_as_epochs():
    text = "Epoch 1/2\n2s - loss: 0.5 - acc: 0.8\nEpoch 2/2\n2s - loss: 0.4 - acc: 0.85\n"
    (log,) = parse_training_log(text)
    assert log.history == {"loss": [0.5, 0.4], "acc": [0.8, 0.85]}


def test_non_dynamic_progress_lines_keep_the_last_value_of_each_epoch():
    text = ("Epoch 1/1\n"
            " 50/100 [==>...] - ETA: 1s - loss: 0.9000 - acc: 0.4000\n"
            "100/100 [=====] - ETA: 0s - loss: 0.8000 - acc: 0.5000\n"
            "100/100 [=====] - 3s 30ms/step - loss: 0.7500 - acc: 0.5500 - val_loss: 0.7 "
            "- val_acc: 0.6\n")
    (log,) = parse_training_log(text)
    assert log.history == {"loss": [0.75], "acc": [0.55], "val_loss": [0.7], "val_acc": [0.6]}


def test_epoch_end_printed_twice_without_redraws_keeps_the_validation_figures():
    text = ("Epoch 1/2\n"
            "6/6 ━━━━━━━━━━━━━━━━━━━━ 1s 30ms/step - accuracy: 0.50 - loss: 1.20\n"
            "6/6 ━━━━━━━━━━━━━━━━━━━━ 1s 40ms/step - accuracy: 0.51 - loss: 1.19 - val_accuracy: "
            "0.40 - val_loss: 1.30\n"
            "Epoch 2/2\n"
            "6/6 ━━━━━━━━━━━━━━━━━━━━ 1s 40ms/step - accuracy: 0.61 - loss: 1.09 - val_accuracy: "
            "0.45 - val_loss: 1.25\n")
    (log,) = parse_training_log(text)
    assert log.history == {"accuracy": [0.51, 0.61], "loss": [1.19, 1.09],
                           "val_accuracy": [0.40, 0.45], "val_loss": [1.30, 1.25]}
    assert parse_test_scores(text) == []


def test_two_fit_calls_in_one_output_are_two_logs():
    text = ("Epoch 1/2\n10/10 - loss: 0.9\nEpoch 2/2\n10/10 - loss: 0.8\n"
            "Epoch 1/3\n10/10 - loss: 0.7\nEpoch 2/3\n10/10 - loss: 0.6\nEpoch 3/3\n10/10 - loss: 0.5\n")
    first, second = parse_training_log(text)
    assert (first.epochs, first.history["loss"]) == (2, [0.9, 0.8])
    assert (second.epochs, second.history["loss"]) == (3, [0.7, 0.6, 0.5])


def test_log_that_starts_at_a_later_epoch_records_initial_epoch():
    (log,) = parse_training_log("Epoch 11/20\n5/5 - loss: 0.3\nEpoch 12/20\n5/5 - loss: 0.2\n")
    assert (log.first_epoch, log.epochs_shown, log.epochs) == (11, 2, 20)


def test_an_epoch_that_never_finished_is_left_out_and_flagged():
    text = ("Epoch 1/5\n100/100 [====] - 8s - loss: 0.6 - acc: 0.7\n"
            "Epoch 2/5\n 40/100 [=>..] - ETA: 5s - loss: 0.55 - acc: 0.72\n")
    (log,) = parse_training_log(text)
    assert log.history == {"loss": [0.6], "acc": [0.7]}
    assert log.interrupted


def test_evaluate_bar_after_training_is_not_an_epoch():
    text = ("Epoch 1/1\n100/100 [====] - 8s - loss: 0.6 - acc: 0.7\n"
            "313/313 [==============================] - 1s 3ms/step - loss: 1.1 - acc: 0.63\n")
    (log,) = parse_training_log(text)
    assert log.history == {"loss": [0.6], "acc": [0.7]}
    (score,) = parse_test_scores(text)
    assert score.kind == "progress"
    assert score.results == {"loss": 1.1, "accuracy": 0.63}


def test_callback_prints_between_epochs_do_not_split_a_log():
    text = ("Epoch 1/2\n10/10 - loss: 0.9\n\nEpoch 00001: val_loss improved from inf to 0.9\n"
            "Epoch 2/2\n10/10 - loss: 0.8\n")
    (log,) = parse_training_log(text)
    assert log.history["loss"] == [0.9, 0.8]


def test_eta_is_not_a_metric():
    (log,) = parse_training_log("Epoch 1/1\n10/10 [==] - ETA: 0s - loss: 0.5\n10/10 [==] - 1s - loss: 0.4\n")
    assert log.history == {"loss": [0.4]}


def test_text_without_epochs_has_no_log():
    assert parse_training_log("Test accuracy: 0.63\nloss: 0.5") == []


@pytest.mark.parametrize("line, expected", [
    ("Test accuracy: 0.6307", {"accuracy": 0.6307}),
    ("Test loss: 1.1027", {"loss": 1.1027}),
    ("Test score: 1.1027", {"loss": 1.1027}),
    ("test acc: 0.967999992371", {"accuracy": 0.967999992371}),
    ("Test accuracy: 63.07%", {"accuracy": 0.6307}),
    ("Test Accuracy = 78.2", {"accuracy": 0.782}),
    ("Accuracy on test set: 0.63", {"accuracy": 0.63}),
    ("test loss, test acc: [1.1, 0.63]", {"loss": 1.1, "accuracy": 0.63}),
    ("Test score: [1.1, 0.63]", {"loss": 1.1, "accuracy": 0.63}),
    ("Test loss: 1.1 - Test accuracy: 0.61", {"loss": 1.1, "accuracy": 0.61}),
])
def test_printed_test_scores(line, expected):
    (score,) = parse_test_scores("some output\n" + line + "\n")
    assert score.results == pytest.approx(expected)
    assert score.kind == "printed"
    assert score.line == 1


def test_figures_that_are_not_about_the_test_set_are_ignored():
    assert parse_test_scores("Validation accuracy: 0.64\nTraining accuracy: 0.75\nacc: 0.5") == []


@pytest.mark.parametrize("garbage", [
    "", "\b\b\b\r\r", "Epoch 1/", "Epoch 3/30\n" + "\b" * 1000, "100/Unknown - loss: x",
    "Epoch 1/2\n\x1b[31m", "test loss, test acc: [abc, ]", "\x00\x01Epoch 1/1\n1/1 - loss: nan",
])
def test_odd_text_never_raises(garbage):
    parse_training_log(garbage)
    parse_test_scores(garbage)


@pytest.mark.parametrize("text", [
    SEED_002_LOG,
    SEED_002_LOG + "313/313 [====] - 1s - loss: 1.1 - accuracy: 0.63\nTest accuracy: 0.6307\n",
    keras1_progress(1, 2, 100, 10, {"loss": 0.9, "acc": 0.5}) + "Test loss, test acc: [1.1, 0.63]\n",
    "Epoch 1/3\n10/10 [==] - loss: 0.5\nEpoch 2/3\n5/10 [=>.] - ETA: 1s - loss: 0.4",  # interrupted
    "no log here\nTEST ACCURACY: 81%\n", "", "\b\b\r", "100/Unknown - loss: x",
])
def test_one_walk_reads_what_the_two_parsers_read(text):
    logs, scores = parse_logs_and_scores(text)
    assert logs == parse_training_log(text)
    assert scores == parse_test_scores(text)
