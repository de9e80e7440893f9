"""Structure checks: parameters, layer sequences, layer types, Dropout placement, shapes, the output layer."""

import pytest

from grader.checks import grade
from grader.model.evidence import CompileInfo, Evidence, LayerInfo, Level
from grader.model.results import Status
from tests.rubric_fixtures import (
    arch,
    big_cnn,
    bn,
    cells,
    cifar_cnn,
    conv,
    dense,
    lab_evidence,
    one_task,
    plain,
    run,
    verified,
)


def check(checks: str, evidence=None, **kw):
    """Grade a one-task rubric against the lab evidence (default model: fit 2, the CIFAR-10 CNN)."""
    return grade(one_task(checks, **kw), evidence or lab_evidence())[0].checks[0]


def evidence_with(architecture, **run_kw):
    return Evidence("s", cells=cells(("code", "fit")), runs=[run(0, 0, architecture, **run_kw)])


# -- parameters


def test_total_params_exact_passes():
    result = check("- total_params: 81_834")
    assert result.status is Status.PASSED and result.points == 1.0 and result.figure == 81_834
    assert result.message == "Your CNN has 81,834 parameters (exactly 81,834)."
    assert result.level is Level.EXECUTED and result.title == "total parameters = 81,834"


def test_total_params_too_many_explains_the_largest_layer():
    result = check("- total_params: {at_most: 100_000}", evidence_with(big_cnn()), model="{fit: 1}")
    assert result.status is Status.FAILED and result.points == 0
    assert result.message == ("Your CNN has 1,293,922 parameters; this task asks for at most 100,000. Most of them are in "
                              "dense_1 (6,272×200 weights + 200 biases = 1,254,600).")
    assert "Dense 6,272→200: 6,272×200 weights + 200 biases = 1,254,600" in result.details["arithmetic"]


def test_total_params_range():
    assert check("- total_params: {between: [50_000, 100_000]}").status is Status.PASSED
    assert check("- total_params: {at_least: 100_000}").status is Status.FAILED


def test_total_params_within_a_tolerance_of_a_number():
    assert check("- total_params: {within: 5%, of: 80_000}").status is Status.PASSED
    failed = check("- total_params: {within: 1%, of: 80_000}")
    assert failed.status is Status.FAILED
    assert failed.message.startswith("Your CNN has 81,834 parameters; this task asks for within 1% of 80,000 (79,200–80,800).")


def test_total_params_within_a_tolerance_of_the_reference_model():
    rubric = one_task("- total_params: {within: 10%, of: reference}", extra="reference: cifar10_cnn")
    result = grade(rubric, lab_evidence(), references={"cifar10_cnn": cifar_cnn()})[0].checks[0]
    assert result.status is Status.PASSED
    assert "within 10% of the reference model cifar10_cnn (81,834)" in result.message


def test_reference_figures_come_from_reference_models_by_default():
    rubric = one_task("- total_params: {within: 0%, of: reference}", extra="reference: cifar10_cnn")
    assert grade(rubric, lab_evidence())[0].checks[0].status is Status.PASSED


def test_missing_reference_is_not_assessed():
    rubric = one_task("- total_params: {within: 10%, of: reference}", extra="reference: cifar10_cnn")
    result = grade(rubric, lab_evidence(), references={})[0].checks[0]
    assert result.status is Status.NOT_ASSESSED
    assert result.message == "Cannot compare: the reference model 'cifar10_cnn' is not available to the grader."


def test_trainable_and_non_trainable_params():
    model = arch(conv("c", 32, 3, 1, 28), bn("bn", [None, 28, 28, 32]), plain("f", "Flatten", [None, 25088]),
                 dense("d", 10, 25088))
    evidence = evidence_with(model)
    assert check("- trainable_params: 251_274", evidence, model="{fit: 1}").status is Status.PASSED
    result = check("- non_trainable_params: 0", evidence, model="{fit: 1}")
    assert result.status is Status.FAILED
    assert result.message == ("Your CNN has 64 non-trainable parameters; this task asks for exactly 0. Non-trainable parameters "
                              "are BatchNormalization's moving mean and variance (2 per channel) and the weights of frozen "
                              "layers; yours are in bn (64).")


def test_trainable_params_of_an_unfrozen_base_suggest_freezing_it():
    base = LayerInfo("vgg16", "Functional", [None, 4, 4, 512], 14_714_688, 14_714_688, 0,
                     layers=[plain("block1_conv1", "Conv2D", [None, 150, 150, 64])])
    model = arch(base, plain("flatten", "Flatten", [None, 8192]), dense("dense", 256, 8192), dense("dense_1", 1, 256))
    result = check("- trainable_params: 2_097_665", evidence_with(model), model="{fit: 1}")
    assert result.status is Status.FAILED
    assert result.message.startswith("Your CNN has 16,812,353 trainable parameters; this task asks for exactly 2,097,665. "
                                     "Most of them are in vgg16 (a nested Functional model with 14,714,688 parameters).")
    assert result.message.endswith("freeze the pretrained base (base.trainable = False) and compile again before fit.")


def test_fine_tuning_fits_of_one_model_keep_their_own_trainable_counts():
    frozen = arch(dense("head", 256, 8192))
    frozen.trainable_params, frozen.non_trainable_params, frozen.total_params = 2_097_665, 14_714_688, 16_812_353
    tuned = arch(dense("head", 256, 8192))
    tuned.trainable_params, tuned.non_trainable_params, tuned.total_params = 9_177_089, 7_635_264, 16_812_353
    evidence = Evidence("s", cells=cells(("code", "fit"), ("code", "fit")),
                        runs=[run(0, 0, frozen, model_id="m"), run(1, 1, tuned, model_id="m")])
    assert check("- trainable_params: 2_097_665", evidence, model="{fit: 1}").status is Status.PASSED
    assert check("- trainable_params: 9_177_089", evidence, model="{fit: 2}").status is Status.PASSED


def test_verified_count_is_preferred_when_it_applies():
    evidence = lab_evidence(verifications=[verified("m1", 0.63, total=81_834)])
    result = check("- total_params: 81_834", evidence)
    assert result.level is Level.VERIFIED and result.details["source"] == "counted by the grader on the saved model"


def test_verified_count_that_contradicts_the_kernel_wins():
    evidence = lab_evidence(verifications=[verified("m1", 0.63, total=1_000_000)])
    assert check("- total_params: 81_834", evidence).status is Status.FAILED


# -- layer sequences


def test_exact_layer_sequence_passes():
    result = check('- layers: "Conv2D MaxPooling2D Conv2D MaxPooling2D Conv2D MaxPooling2D Flatten Dense Dense"')
    assert result.status is Status.PASSED
    assert result.figure == "Conv2D → MaxPooling2D → Conv2D → MaxPooling2D → Conv2D → MaxPooling2D → Flatten → Dense → Dense"


def test_exact_sequence_as_a_list():
    assert check("- layers: [Conv2D, MaxPooling2D, Conv2D, MaxPooling2D, Conv2D, MaxPooling2D, Flatten, Dense, Dense]").status is Status.PASSED


def test_exact_sequence_names_the_missing_layer():
    result = check('- layers: "Conv2D MaxPooling2D Dropout Conv2D MaxPooling2D Conv2D MaxPooling2D Flatten Dense Dense"')
    assert result.status is Status.FAILED
    assert result.message.endswith("Missing Dropout after layer 2 (MaxPooling2D, max_pooling2d).")


def test_exact_sequence_names_an_extra_layer():
    result = check('- layers: "Conv2D MaxPooling2D Conv2D MaxPooling2D Conv2D Flatten Dense Dense"')
    assert result.message.endswith("Not expected: layer 6 (MaxPooling2D, max_pooling2d_2).")


def test_exact_sequence_names_a_replaced_layer():
    result = check('- layers: "Conv2D AveragePooling2D Conv2D MaxPooling2D Conv2D MaxPooling2D Flatten Dense Dense"')
    assert result.message.endswith("Layer 2 (MaxPooling2D, max_pooling2d) where the task expects AveragePooling2D.")


def test_pattern_with_repeated_blocks_and_optional_layers():
    model = arch(conv("c1", 32, 3, 3, 32, padding="same", activation=None), bn("b1", [None, 32, 32, 32]),
                 plain("a1", "Activation", [None, 32, 32, 32], activation="relu"),
                 conv("c2", 32, 3, 32, 32, padding="same", activation=None),
                 plain("a2", "Activation", [None, 32, 32, 32], activation="relu"),
                 plain("p", "MaxPooling2D", [None, 16, 16, 32]), plain("f", "Flatten", [None, 8192]), dense("d", 10, 8192))
    evidence = evidence_with(model)
    pattern = '- layers: "(Conv2D BatchNormalization? Activation)+ MaxPooling2D Flatten Dense+"'
    assert check(pattern, evidence, model="{fit: 1}").status is Status.PASSED


def test_pattern_failure_says_where_and_what_was_expected():
    result = check('- layers: "(Conv2D BatchNormalization? Activation)+ MaxPooling2D Flatten Dense+"')
    assert result.status is Status.FAILED
    assert result.message.endswith("Layer 2 (MaxPooling2D, max_pooling2d) is where they depart from it: expected "
                                   "BatchNormalization or Activation there.")


def test_pattern_failure_when_the_model_ends_early():
    result = check('- layers: "Conv2D MaxPooling2D (Conv2D MaxPooling2D)* Flatten Dense Dense Dense"')
    assert result.message.endswith("The model ends after layer 9 (Dense, dense_1), but the pattern expects more: Dense.")


def test_pattern_failure_when_the_model_is_too_long():
    result = check('- layers: "(Conv2D MaxPooling2D){1,2} Flatten Dense Dense"')
    assert "Layer 5 (Conv2D, conv2d_2) is where they depart from it: expected Flatten there." in result.message


def test_wildcards_and_alternatives():
    assert check('- layers: "(Conv2D (MaxPooling2D|AveragePooling2D))+ . Dense*"').status is Status.PASSED


def test_pattern_contains_somewhere():
    assert check("- layers: {pattern: Flatten Dense Dense, match: contains}").status is Status.PASSED
    result = check("- layers: {pattern: Dropout Dense, match: contains}")
    assert result.status is Status.FAILED and result.message.endswith("Dropout Dense somewhere in them, and it is not there.")


def test_input_layer_is_ignored():
    model = cifar_cnn()
    model.layers.insert(0, plain("input_1", "InputLayer", [None, 32, 32, 3]))
    assert check('- layers: "Conv2D MaxPooling2D .* Dense"', evidence_with(model), model="{fit: 1}").status is Status.PASSED


def test_old_keras_class_names_match_current_ones():
    model = arch(LayerInfo("convolution2d_1", "Convolution2D", [None, 28, 28, 32], 320),
                 LayerInfo("batchnormalization_1", "BatchNorma", [None, 28, 28, 32], 128),
                 plain("maxpooling2d_1", "MaxPooling2D", [None, 14, 14, 32]))
    evidence = evidence_with(model, level=Level.REPORTED)
    result = check('- layers: "Conv2D BatchNormalization MaxPool2D"', evidence, model="{fit: 1}")
    assert result.status is Status.PASSED and result.level is Level.REPORTED


# -- layer types


def test_contains_dropout():
    evidence = lab_evidence()
    assert check("- contains: Dropout", evidence, model="{fit: 3}").status is Status.PASSED
    result = check("- contains: Dropout", evidence)
    assert result.status is Status.FAILED
    assert result.message == "Your CNN has no Dropout layers; this task asks for at least 1."


def test_contains_counts():
    passed = check("- contains: {layer: Dropout, equals: 2}", model="{fit: 3}")
    assert passed.status is Status.PASSED and passed.message == "Your CNN has 2 Dropout layers (dropout, dropout_1)."
    assert check("- contains: {layer: Conv2D, at_least: 4}").status is Status.FAILED


def test_contains_with_settings():
    result = check("- contains: {layer: Dropout, config: {rate: 0.25}}", model="{fit: 3}")
    assert result.status is Status.FAILED
    assert result.message == ("Your CNN has no Dropout layers with rate 0.25; this task asks for at least 1. Its Dropout "
                              "layers have other settings (dropout: rate 0.2; dropout_1: rate 0.2).")
    assert check("- contains: {layer: Dense, config: {units: 120, activation: relu}}").status is Status.PASSED


def test_contains_alternatives():
    assert check("- contains: SpatialDropout2D|Dropout", model="{fit: 3}").status is Status.PASSED


def test_lacks():
    assert check("- lacks: BatchNormalization").status is Status.PASSED
    result = check("- lacks: Dropout", model="{fit: 3}")
    assert result.status is Status.FAILED
    assert result.message == "Your CNN has 2 Dropout layers (dropout, dropout_1); this task asks for none."


def test_dropout_before_the_largest_dense():
    model = arch(conv("c", 32, 3, 3, 148), plain("p", "MaxPooling2D", [None, 7, 7, 128]), plain("f", "Flatten", [None, 6272]),
                 plain("drop", "Dropout", [None, 6272], rate=0.5), dense("d", 512, 6272), dense("out", 1, 512, activation="sigmoid"))
    result = check("- dropout_before: largest_dense", evidence_with(model), model="{fit: 1}")
    assert result.status is Status.PASSED
    assert result.message == "drop (rate 0.5) sits right before d, the largest Dense layer (3,211,776 parameters)."


def test_dropout_missing_before_the_largest_dense():
    result = check("- dropout_before: largest_dense", evidence_with(big_cnn()), model="{fit: 1}")
    assert result.status is Status.FAILED
    assert result.message == ("The largest Dense layer, dense_1 (6,272×200 weights + 200 biases = 1,254,600), has no Dropout "
                              "right before it; put one between layer 5 (Flatten, flatten) and dense_1: a layer with this many "
                              "weights overfits easily.")


def test_dropout_separated_by_a_layer_with_weights_does_not_count():
    model = arch(plain("drop", "Dropout", [None, 100]), dense("d1", 100, 100), dense("d2", 10, 100))
    assert check("- dropout_before: last_dense", evidence_with(model), model="{fit: 1}").status is Status.FAILED
    assert check("- dropout_before: first_dense", evidence_with(model), model="{fit: 1}").status is Status.PASSED


# -- output shapes


def test_output_shape_by_class_without_batch_dimension():
    assert check("- output_shape: {layer: Conv2D, shape: [28, 28, 32]}").status is Status.PASSED
    assert check("- output_shape: {layer: Conv2D, nth: 2, shape: [null, 11, 11, 64]}").status is Status.PASSED


def test_output_shape_by_position():
    assert check("- output_shape: {position: -1, shape: [10]}").status is Status.PASSED
    assert check("- output_shape: {position: 7, shape: [120]}").status is Status.PASSED


def test_output_shape_mismatch_explains_the_size():
    result = check("- output_shape: {layer: Conv2D, shape: [24, 24, 32]}")
    assert result.status is Status.FAILED
    assert result.message == ("The first Conv2D layer, conv2d, outputs (None, 28, 28, 32); this task expects (24, 24, 32). "
                              "Its size comes from 32 − 5 + 1 = 28 (valid padding).")


def test_output_shape_of_a_missing_layer():
    result = check("- output_shape: {layer: Conv2D, nth: 4, shape: [1]}")
    assert result.status is Status.FAILED and result.message.startswith("Your CNN has no 4th Conv2D layer: its layers are Conv2D →")


# -- output layer and loss


def test_softmax_with_categorical_crossentropy_passes():
    result = check("- output_layer: true")
    assert result.status is Status.PASSED
    assert result.message == "The output layer dense_1 (10 units, softmax) fits the loss categorical_crossentropy."


def test_sigmoid_with_categorical_crossentropy_fails():
    model = cifar_cnn()
    model.layers[-1].activation = "sigmoid"
    result = check("- output_layer: true", evidence_with(model), model="{fit: 1}")
    assert result.status is Status.FAILED
    assert result.message == ("The output layer dense_1 (10 units, sigmoid) with the loss categorical_crossentropy: it uses "
                              "sigmoid, but the loss is categorical_crossentropy: use softmax.")


def test_activation_in_a_separate_layer_counts():
    model = arch(plain("f", "Flatten", [None, 784]), dense("d", 10, 784), plain("act", "Activation", [None, 10], activation="softmax"))
    assert check("- output_layer: true", evidence_with(model), model="{fit: 1}").status is Status.PASSED


def test_wrong_number_of_output_units_for_the_dataset():
    model = arch(plain("f", "Flatten", [None, 3072]), dense("d", 3, 3072, activation="softmax"))
    result = check("- output_layer: true", evidence_with(model), model="{fit: 1}")
    assert result.status is Status.FAILED and "it has 3 units where 10 are needed (one per class)" in result.message


def test_binary_output():
    model = arch(plain("f", "Flatten", [None, 100]), dense("d", 1, 100, activation="sigmoid"))
    bce = CompileInfo("RMSprop", 1e-4, "BinaryCrossentropy", ["acc"])
    assert check("- output_layer: true", evidence_with(model, compile=bce), model="{fit: 1}", dataset="null").status is Status.PASSED
    model.layers[-1].activation = "softmax"
    result = check("- output_layer: true", evidence_with(model, compile=bce), model="{fit: 1}", dataset="null")
    assert result.status is Status.FAILED and "it uses softmax, but the loss is binary_crossentropy: use sigmoid" in result.message


def test_logits_output_without_from_logits_record_is_not_assessed():
    model = arch(plain("f", "Flatten", [None, 100]), dense("d", 10, 100))
    result = check("- output_layer: true", evidence_with(model), model="{fit: 1}")
    assert result.status is Status.NOT_ASSESSED and "from_logits=True was not recorded" in result.message


def test_an_output_activation_no_saved_output_shows_is_unknown_not_logits():
    """Static mode: a Keras summary never prints activations; without the code matched to it the
    output layer's activation is not known, and the report must not say "it outputs logits"."""
    model = arch(plain("f", "Flatten", [None, 100]), dense("d", 10, 100))
    result = check("- output_layer: true", evidence_with(model, level=Level.REPORTED), model="{fit: 1}")
    assert result.status is Status.NOT_ASSESSED and "is not known" in result.message
    assert "logits" not in result.message
    asked = check("- output_layer: {activation: softmax}", evidence_with(model, level=Level.REPORTED), model="{fit: 1}")
    assert asked.status is Status.NOT_ASSESSED and "uses linear" not in asked.message


def test_an_unknown_output_activation_still_fails_on_the_wrong_number_of_classes():
    model = arch(plain("f", "Flatten", [None, 100]), dense("d", 5, 100))
    result = check("- output_layer: true", evidence_with(model, level=Level.REPORTED), model="{fit: 1}")
    assert result.status is Status.FAILED and "5 units where 10 are needed" in result.message


def test_a_softmax_layer_in_the_saved_summary_or_an_activation_read_from_the_code_is_known():
    shown = arch(plain("f", "Flatten", [None, 100]), dense("d", 10, 100), plain("s", "Softmax", [None, 10]))
    assert check("- output_layer: true", evidence_with(shown, level=Level.REPORTED),
                 model="{fit: 1}").status is Status.PASSED
    from_code = arch(plain("f", "Flatten", [None, 100]), dense("d", 10, 100, activation="softmax"))
    assert check("- output_layer: true", evidence_with(from_code, level=Level.REPORTED),
                 model="{fit: 1}").status is Status.PASSED


def test_expected_activation_and_units():
    assert check("- output_layer: {units: 10, activation: softmax}").status is Status.PASSED
    assert check("- output_layer: {activation: sigmoid}").status is Status.FAILED


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "CategoricalCrossentropy", "keras.losses.CategoricalCrossentropy"])
def test_loss_spellings(loss):
    compile_info = CompileInfo("SGD", 0.01, loss)
    assert check("- output_layer: true", evidence_with(cifar_cnn(), compile=compile_info), model="{fit: 1}").status is Status.PASSED


def test_structure_checks_stay_exact_in_fast_mode():
    evidence = lab_evidence(fast_mode=True)
    assert check("- total_params: 81_834", evidence).status is Status.PASSED
    assert check("- layers: Conv2D .*", evidence).status is Status.PASSED
