"""Small CNNs for 28x28 digit-like data: Model A, B, C (AI-GAN Table I and its black-box
substitute), LeNet-5 (AE4DNN transfer target) and D1 (adversarial networks, 003 appendix).

All layer sizes after the convolutions are computed from ``input_size``, so each net also
accepts 32x32 and colour input.
"""

from __future__ import annotations

from torch import nn

from advforge.models.zoo import (
    MODELS,
    check_choice,
    check_feature_size,
    check_fraction,
    conv_out,
    pool_out,
)


@MODELS.register("model_a")
def model_a(num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """Model A of AI-GAN Table I, from Tramer et al. (2018, ensemble adversarial training).

    Conv(64, 5x5)+ReLU, Conv(64, 5x5)+ReLU, Dropout(0.25), FC(128)+ReLU, Dropout(0.5), FC.
    Convolutions are unpadded ("valid"), as in Tramer et al.'s Keras code: 28 -> 24 -> 20.
    """
    size = conv_out(conv_out(input_size, 5), 5)
    check_feature_size("model_a", size, input_size)
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 5), nn.ReLU(),
        nn.Conv2d(64, 64, 5), nn.ReLU(),
        nn.Dropout(0.25),
        nn.Flatten(),  # (B, 64 * size * size)
        nn.Linear(64 * size * size, 128), nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, num_classes),
    )


@MODELS.register("model_b")
def model_b(num_classes: int, in_channels: int, input_size: int, dropout: float = 0.0) -> nn.Module:
    """Model B of AI-GAN Table I: the MNIST network of Carlini & Wagner (2017).

    Conv(32, 3x3)+ReLU x2, MaxPool(2), Conv(64, 3x3)+ReLU x2, MaxPool(2), FC(200)+ReLU,
    FC(200)+ReLU, FC. Unpadded convolutions as in C&W's code: 28 -> 26 -> 24 -> 12 -> 10 -> 8
    -> 4. Table I lists no dropout, so ``dropout`` defaults to 0; C&W's own training used 0.5
    after the first FC layer, which ``dropout=0.5`` reproduces.
    """
    check_fraction("dropout", dropout)
    size = pool_out(conv_out(conv_out(pool_out(conv_out(conv_out(input_size, 3), 3)), 3), 3))
    check_feature_size("model_b", size, input_size)
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 32, 3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),  # (B, 64 * size * size)
        nn.Linear(64 * size * size, 200), nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(200, 200), nn.ReLU(),
        nn.Linear(200, num_classes),
    )


@MODELS.register("model_c")
def model_c(num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """Model C: the local substitute used by AI-GAN's dynamic distillation on MNIST.

    AI-GAN cites LeCun et al. (1998) for it without listing layers; we take the LeNet-like
    "Model C" of Tramer et al. (2018), which AdvGAN (the method AI-GAN extends) also uses:
    Conv(128, 3x3)+tanh, MaxPool(2), Conv(64, 3x3)+tanh, MaxPool(2), FC(128)+ReLU, FC.
    Unpadded convolutions: 28 -> 26 -> 13 -> 11 -> 5. Its tanh layers and pooling make it
    differ from Models A and B, which is what a substitute for an unknown target wants.
    """
    size = pool_out(conv_out(pool_out(conv_out(input_size, 3)), 3))
    check_feature_size("model_c", size, input_size)
    return nn.Sequential(
        nn.Conv2d(in_channels, 128, 3), nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 64, 3), nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Flatten(),  # (B, 64 * size * size)
        nn.Linear(64 * size * size, 128), nn.ReLU(),
        nn.Linear(128, num_classes),
    )


@MODELS.register("lenet5")
def lenet5(
    num_classes: int, in_channels: int, input_size: int, activation: str = "relu"
) -> nn.Module:
    """LeNet-5 (LeCun et al., 1998), an AE4DNN transfer target.

    C1 Conv(6, 5x5), S2 pool(2), C3 Conv(16, 5x5), S4 pool(2), C5 FC(120), F6 FC(84), output.
    LeNet-5 was designed for 32x32 input (MNIST padded by 2), so C1 pads by
    ``(32 - input_size) // 2`` (2 for 28x28, 0 for 32x32) and C1 always sees a 32x32 frame.
    Modern choices: max pooling and ``activation="relu"`` (``"tanh"`` is closer to 1998).
    """
    check_choice("activation", activation, ("relu", "tanh"))
    act = nn.ReLU if activation == "relu" else nn.Tanh
    pad = max(0, (32 - input_size) // 2)
    size = pool_out(conv_out(pool_out(conv_out(input_size, 5, padding=pad)), 5))
    check_feature_size("lenet5", size, input_size)
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=pad), act(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), act(),
        nn.MaxPool2d(2),
        nn.Flatten(),  # (B, 16 * 5 * 5) for 28x28 and 32x32 input
        nn.Linear(16 * size * size, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )


@MODELS.register("d1")
def d1(num_classes: int, in_channels: int, input_size: int, padding: str = "same") -> nn.Module:
    """D1 of Wang & Yu (003 appendix, Fig. 3a): their LeNet5-like MNIST discriminator.

    conv2d(3,1,16), conv2d(5,1,32), maxpool(2), conv2d(5,1,64), maxpool(2), FC(10); ReLU after
    each convolution. The figure gives no padding; the authors' TF-slim code uses
    ``slim.conv2d`` (default padding SAME) and flattens 7*7*64 features, so the default keeps
    the size (28 -> 28 -> 28 -> 14 -> 14 -> 7, FC over 64*7*7). ``padding="valid"`` gives
    28 -> 26 -> 22 -> 11 -> 7 -> 3.
    """
    check_choice("padding", padding, ("same", "valid"))
    same = padding == "same"
    p3, p5 = (1, 2) if same else (0, 0)
    size = pool_out(conv_out(pool_out(conv_out(conv_out(input_size, 3, padding=p3), 5,
                                               padding=p5)), 5, padding=p5))
    check_feature_size("d1", size, input_size)
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=p3), nn.ReLU(),
        nn.Conv2d(16, 32, 5, padding=p5), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=p5), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),  # (B, 64 * size * size)
        nn.Linear(64 * size * size, num_classes),
    )
