"""AI-GAN's published MNIST figures (Bai et al., Tables II, III, IV and VI), printed beside
ours."""

from __future__ import annotations

# Percent. The paper's "Class 1..10" are our classes 0..9.
PAPER = {
    "table2": {
        "model_a": [98.71, 97.04, 99.94, 99.96, 99.47, 99.80, 97.41, 99.85, 99.38, 99.83],
        "model_b": [99.45, 98.53, 98.14, 96.26, 99.14, 99.35, 99.34, 98.62, 98.50, 97.67],
        "average": {"model_a": 99.14, "model_b": 98.50},
    },
    "table3": {"advgan": {"model_a": 97.90, "model_b": 98.30},
               "aigan": {"model_a": 99.14, "model_b": 98.50}},
    "table4": {"fgsm": {"model_a": 29.49, "model_b": 23.72}, "cw": {"model_a": 10.32,
               "model_b": 10.09}, "pgd": {"model_a": 46.93, "model_b": 33.70},
               "advgan": {"model_a": 93.40, "model_b": 94.00},
               "aigan": {"model_a": 96.04, "model_b": 94.95}},
    "table6": {"fgsm": "0.06s", "cw_l2": ">3h", "pgd20": "0.7s", "advgan": "<0.01s",
               "aigan": "<0.01s"},
}
