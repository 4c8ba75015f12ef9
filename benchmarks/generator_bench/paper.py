"""Wang & Yu's CIFAR-10 figures for the generator study (Sec. 4.5 and the appendix), printed
beside ours. They are CIFAR-10 numbers (ResNet D2, eps 8/256), not figures for the dataset
a run measures: they show the pattern the paper reports, not a target value."""

from __future__ import annotations

NOTE = ("Wang & Yu's CIFAR-10 figures (ResNet D2, eps 8/256, full test set), percent; "
        "our figures are fractions on the dataset above")

# Tables 5, 10 and 11: a generator trained against the fixed model in the first column
# (white-box-like), its perturbations applied to the other models (transfer).
_ORIGINAL = {"A'": 90.54, "B'": 75.71, "C'": 89.21}
PAPER_ATTACK = {
    "A": {  # Table 5: the undefended model
        "original": {"A": 91.59, **_ORIGINAL},
        "ae8": {"A": 31.07, "A'": 41.40, "B'": 74.56, "C'": 84.59},
        "ae64": {"A": 6.08, "A'": 14.74, "B'": 75.52, "C'": 86.64},
        "gauss": {"A": 45.27, "A'": 58.68, "B'": 75.02, "C'": 87.33},
        "label": {"A": 11.17, "A'": 23.29, "B'": 74.78, "C'": 82.43},
    },
    "B": {  # Table 10: the PGD-trained model
        "original": {"B": 75.30, **_ORIGINAL},
        "ae8": {"B": 72.74, "A'": 88.38, "B'": 73.07, "C'": 87.89},
        "ae64": {"B": 71.26, "A'": 87.64, "B'": 71.98, "C'": 87.02},
        "gauss": {"B": 74.13, "A'": 88.71, "B'": 74.70, "C'": 88.45},
        "label": {"B": 70.15, "A'": 84.95, "B'": 70.10, "C'": 84.96},
    },
    "C": {  # Table 11: the adversarial network
        "original": {"C": 91.08, **_ORIGINAL},
        "ae8": {"C": 74.66, "A'": 66.95, "B'": 74.42, "C'": 80.55},
        "ae64": {"C": 53.68, "A'": 46.37, "B'": 73.08, "C'": 72.18},
        "gauss": {"C": 85.91, "A'": 71.00, "B'": 75.00, "C'": 86.55},
        "label": {"C": 81.46, "A'": 77.46, "B'": 73.09, "C'": 83.98},
    },
}
ATTACK_TABLE = {"A": "table5", "B": "table10", "C": "table11"}

# Table 6: adversarial networks co-trained with each generator; white-box no noise / FGS /
# PGD, black-box FGS and PGD crafted on A' and B'.
PAPER_COTRAINED = {
    "ae8": {"clean": 88.70, "fgs": 67.28, "pgd10": 33.56, "FGS(A')": 78.94,
            "PGD(A')": 74.15, "FGS(B')": 70.70, "PGD(B')": 68.54},
    "ae64": {"clean": 89.10, "fgs": 67.05, "pgd10": 33.38, "FGS(A')": 79.56,
             "PGD(A')": 74.40, "FGS(B')": 70.52, "PGD(B')": 68.66},
    "gauss": {"clean": 89.73, "fgs": 69.43, "pgd10": 35.16, "FGS(A')": 80.09,
              "PGD(A')": 76.02, "FGS(B')": 71.22, "PGD(B')": 69.66},
    "label": {"clean": 88.72, "fgs": 67.09, "pgd10": 37.70, "FGS(A')": 80.95,
              "PGD(A')": 77.80, "FGS(B')": 70.90, "PGD(B')": 68.81},
}


def paper_figures(targets: list[str]) -> dict:
    """The paper's tables for the attacked ``targets`` and Table 6, under the JSON's keys."""
    tables = {ATTACK_TABLE[t]: {"target": t, "rows": PAPER_ATTACK[t]} for t in targets}
    return {"note": NOTE, **tables, "table6": {"rows": PAPER_COTRAINED}}
