"""The first-order influence (FI) measure: which pixels and which images are vulnerable.

``pixel_fi(model, x, y, *, target=None) -> (B, C, H, W)`` and ``image_fi(...) -> (B,)`` are
Eq. 1 of Shi, Shu, Zhu & Chen with the objective of their Eq. 5 (after Shu & Zhu 2019);
``influence(...)`` returns both from one Jacobian; ``target_maps`` gives one image's pixel
maps for every target class; ``survey`` measures a whole split (the most vulnerable images,
the confusion matrix, FI against confidence). ``top_pixels`` and ``pixels_above`` pick
the pixels an attack perturbs. ``universality`` applies one perturbation to the images of
the other classes (Table 2) and ``universal_perturbation`` makes it with ``fi_pso``.
docs/influence.md explains the measure.
"""

from advforge.influence.formulas import null_cutoff
from advforge.influence.jacobian import logit_jacobian
from advforge.influence.measure import Influence, image_fi, influence, pixel_fi, target_maps
from advforge.influence.select import pixels_above, top_pixels
from advforge.influence.survey import Survey, confidence_relation, survey
from advforge.influence.universality import (
    Universality,
    UniversalPerturbation,
    universal_perturbation,
    universality,
)

__all__ = [
    "Influence",
    "Survey",
    "Universality",
    "UniversalPerturbation",
    "confidence_relation",
    "image_fi",
    "influence",
    "logit_jacobian",
    "null_cutoff",
    "pixel_fi",
    "pixels_above",
    "survey",
    "target_maps",
    "top_pixels",
    "universal_perturbation",
    "universality",
]
