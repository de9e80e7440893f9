"""Parameter arithmetic per layer, as the course asks students to do it (issue 4, item 3)."""

from grader.model.arithmetic import explain_architecture, explain_layer, explain_output_shape, layer_formula
from grader.model.format import fmt_int
from grader.model.evidence import LayerInfo
from tests.rubric_fixtures import arch, bn, cifar_cnn, conv, dense, plain


def test_dense_shows_weights_and_biases():
    layer = LayerInfo("dense", "Dense", [None, 500], 392_500, 392_500, config={"units": 500, "input_dim": 784})
    assert explain_layer(layer) == "Dense 784→500: 784×500 weights + 500 biases = 392,500"


def test_conv2d_shows_kernel_channels_and_filters():
    layer = LayerInfo("conv2d", "Conv2D", [None, 28, 28, 32], 320, 320,
                      config={"filters": 32, "kernel_size": [3, 3], "in_channels": 1})
    assert explain_layer(layer) == "Conv2D 3×3, 1→32 channels: 3·3·1·32 + 32 = 320"


def test_batch_normalization_shows_frozen_moving_statistics():
    assert explain_layer(bn("batch_normalization", [None, 28, 28, 32])) == (
        "BatchNormalization over 32 channels: 4·32 = 128, of which 64 are not trainable")


def test_parameter_free_layers_have_zero_parameters():
    assert explain_layer(plain("dropout", "Dropout", [None, 200], rate=0.5)) == "Dropout: 0 parameters"
    assert explain_layer(plain("flatten", "Flatten", [None, 3136])) == "Flatten: 0 parameters"
    assert explain_layer(plain("pool", "MaxPooling2D", [None, 14, 14, 32], pool_size=[2, 2])) == "MaxPooling2D 2×2: 0 parameters"


def test_dense_without_bias():
    assert explain_layer(dense("d", 10, 784, bias=False)) == "Dense 784→10: 784×10 weights, no biases = 7,840"


def test_static_dense_infers_fan_in_from_count():
    # A Keras 1 summary row: "dense_1 (Dense) (None, 400) 1638800" with no config.
    layer = LayerInfo("dense_1", "Dense", [None, 400], 1_638_800)
    assert explain_layer(layer) == "Dense 4,096→400: 4,096×400 weights + 400 biases = 1,638,800"


def test_static_conv_infers_kernel_from_input_channels():
    layer = LayerInfo("convolution2d_2", "Convolution2D", [None, 48, 48, 32], 9_248)
    assert explain_layer(layer, input_shape=[None, 48, 48, 32]) == "Conv2D 3×3, 32→32 channels: 3·3·32·32 + 32 = 9,248"


def test_static_conv_without_input_shape_gives_the_count_only():
    layer = LayerInfo("conv", "Conv2D", [None, 48, 48, 32], 9_248)
    assert explain_layer(layer) == "Conv2D conv: 9,248 parameters"


def test_static_batchnorm_from_output_shape():
    layer = LayerInfo("batchnormalization_5", "BatchNormalization", [None, 200], 800)
    assert explain_layer(layer) == "BatchNormalization over 200 channels: 4·200 = 800, of which 400 are not trainable"


def test_formula_that_disagrees_with_the_recorded_count_is_not_shown():
    layer = LayerInfo("dense", "Dense", [None, 500], 999, config={"units": 500, "input_dim": 784})
    assert layer_formula(layer) is None
    assert explain_layer(layer) == "Dense dense: 999 parameters"


def test_nested_model_gives_its_count():
    base = LayerInfo("vgg16", "Functional", [None, 4, 4, 512], 14_714_688, 0, 14_714_688,
                     layers=[plain("block1_conv1", "Conv2D", [None, 150, 150, 64]), plain("block1_pool", "MaxPooling2D", [None, 75, 75, 64])])
    assert explain_layer(base) == "vgg16 (Functional, 2 layers): 14,714,688 parameters, of which 14,714,688 are not trainable"


def test_frozen_dense_says_so():
    layer = dense("dense", 8, 4096)
    layer.non_trainable_params, layer.trainable_params = layer.params, 0
    assert explain_layer(layer).endswith("= 32,776 (all frozen: none are trainable)")


def test_separable_conv():
    layer = LayerInfo("sep", "SeparableConv2D", [None, 10, 10, 64], 3 * 3 * 32 + 32 * 64 + 64,
                      config={"filters": 64, "kernel_size": [3, 3], "in_channels": 32})
    assert explain_layer(layer) == "SeparableConv2D 3×3, 32→64 channels: 3·3·32 (depthwise) + 32·64 (pointwise) + 64 = 2,400"


def test_conv1d_uses_width():
    layer = LayerInfo("c", "Conv1D", [None, 96, 32], 5 * 16 * 32 + 32,
                      config={"filters": 32, "kernel_size": [5], "in_channels": 16})
    assert explain_layer(layer) == "Conv1D width 5, 16→32 channels: 5·16·32 + 32 = 2,592"


def test_unknown_layer_with_parameters_gives_the_count():
    layer = LayerInfo("lstm", "LSTM", [None, 32], 17_920, 17_920)
    assert explain_layer(layer) == "LSTM lstm: 17,920 parameters"


def test_explain_architecture_passes_each_layer_its_input_shape():
    lines = explain_architecture(cifar_cnn())
    assert lines[0] == "Conv2D 5×5, 3→32 channels: 5·5·3·32 + 32 = 2,432"
    assert lines[2] == "Conv2D 4×4, 32→64 channels: 4·4·32·64 + 64 = 32,832"
    assert lines[-1] == "Dense 120→10: 120×10 weights + 10 biases = 1,210"
    assert len(lines) == len(cifar_cnn().layers)


def test_explain_architecture_infers_static_layers_from_neighbours():
    static = arch(LayerInfo("c1", "Convolution2D", [None, 48, 48, 32], 896),
                  LayerInfo("c2", "Convolution2D", [None, 48, 48, 32], 9_248), input_shape=[None, 48, 48, 3])
    assert explain_architecture(static) == ["Conv2D 3×3, 3→32 channels: 3·3·3·32 + 32 = 896",
                                            "Conv2D 3×3, 32→32 channels: 3·3·32·32 + 32 = 9,248"]


def test_output_shape_of_valid_convolution():
    layer = conv("c", 16, 5, 1, 24)
    assert explain_output_shape(layer, [None, 28, 28, 1]) == "28 − 5 + 1 = 24 (valid padding)"


def test_output_shape_of_same_convolution_with_stride():
    layer = conv("c", 16, 3, 1, 14, padding="same")
    layer.config["strides"] = [2, 2]
    assert explain_output_shape(layer, [None, 28, 28, 1]) == "⌈28 / 2⌉ = 14 (same padding, stride 2)"


def test_output_shape_of_pooling_uses_pool_size_as_stride():
    layer = plain("p", "MaxPooling2D", [None, 3, 3, 64], pool_size=[3, 3])
    assert explain_output_shape(layer, [None, 11, 11, 64]) == "⌊(11 − 3) / 3⌋ + 1 = 3 (valid padding, stride 3)"


def test_output_shape_unknown_for_dense():
    assert explain_output_shape(dense("d", 10, 20), [None, 20]) is None


def test_thousands_separators():
    assert fmt_int(1_250_000) == "1,250,000"
    assert fmt_int(12.0) == "12"
