"""AI-GAN's two updates (Bai et al., Sec. IV-B, Algorithm 1): the generator step and the
discriminator step, each under a banner naming the objective it optimises.

Both take the :class:`~advforge.generative.aigan.trainer.AIGANTrainer` that holds the
networks, optimizers and RNG. Losses are written as the quantities minimised, so the
paper's maximised log-likelihoods appear negated (cross-entropies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from advforge.data.augment import random_translate
from advforge.generative.distill import query_gradient
from advforge.generative.losses import cw_target_loss, gan_loss
from advforge.generative.nets import ClassHead
from advforge.generative.optim import descend
from advforge.utils.modes import model_mode

if TYPE_CHECKING:
    from advforge.generative.aigan.config import AIGANObjective
    from advforge.generative.aigan.trainer import AIGANTrainer


def target_loss(logits: torch.Tensor, t: torch.Tensor, objective: AIGANObjective) -> torch.Tensor:
    """-Eq. 9, the target model's term: the C&W margin (``target_loss="cw"``, what Sec. V-B
    says is applied) or the cross-entropy of t (``"ce"``, Eq. 9 as printed)."""
    if objective.target_loss == "cw":
        return cw_target_loss(logits, t, objective.kappa)
    return F.cross_entropy(logits, t)


# ---- Generator: maximise L_target(pert) (Eq. 9) + L_D(pert) (Eq. 10) - L_S (Eq. 6) ----
def generator_step(
    tr: AIGANTrainer, x: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """One G update towards targets ``t``; returns the detached x_pert and the losses.

    G minimises w_target * (-Eq. 9) + w_disc_class * (-Eq. 10) + w_gan * (-L_S), the last in
    the non-saturating form -log P(S = clean | x_pert); in black-box mode the target term is
    computed on the local model f_d (Sec. V-D)."""
    obj, bb = tr.cfg.objective, tr.cfg.black_box
    tr.G.train()
    x_pert = tr.G.perturb(x, t)  # (B, C, H, W), ||x_pert - x||_inf <= eps
    # input diversity (local_shift): the same gather as the classifiers' shift augmentation
    judged = random_translate(x_pert, bb.local_shift, tr.rng)  # identity when 0
    with model_mode(tr.attacked, "eval"):
        logits = tr.attacked(judged)  # (B, K)
    loss_target = target_loss(logits, t, obj)
    loss = obj.w_target * loss_target
    extra = {}
    if tr.D is not None:  # D's terms (off when neither weighs: obj.uses_discriminator)
        source, cls = tr.D(x_pert)
        loss_disc_class = F.cross_entropy(cls, t)  # -Eq. 10
        loss_gan = gan_loss(source, clean=True, kind=obj.gan_loss)  # -L_S, non-saturating
        loss = loss + tr.disc_factor * (obj.w_disc_class * loss_disc_class
                                        + obj.w_gan * loss_gan)
        extra.update(g_disc_class=loss_disc_class.item(), g_gan=loss_gan.item())
    if bb.query_samples:  # black-box: the target's own margin gradient, from queries
        grad = query_gradient(tr.oracle, x_pert.detach(), t, samples=bb.query_samples,
                              sigma=bb.query_sigma, kappa=obj.kappa, rng=tr.rng)
        # d/dx_pert of this surrogate is grad / B: the estimate of d(mean margin)/dx_pert
        surrogate = (x_pert * grad).flatten(1).sum(1).mean()
        loss = loss + obj.w_target * bb.query_weight * surrogate
        extra["query_grad_norm"] = grad.flatten(1).norm(dim=1).mean().item()
    descend(tr.opt_g, loss, list(tr.G.parameters()))
    if tr.G_avg is not None:
        tr.G_avg.update(tr.G)
    hit = (logits.argmax(1) == t).float()  # (B,)
    tr.targets.update(t, hit)
    return x_pert.detach(), {
        "g_loss": loss.item(), "g_target": loss_target.item(),
        "train_success": hit.mean().item(), **extra}


# ---- Discriminator: maximise L_S (Eq. 6) + L_C(adv) (Eq. 7) + L_C(pert) (Eq. 8) ----
def discriminator_step(
    tr: AIGANTrainer, x: torch.Tensor, y: torch.Tensor, x_pert: torch.Tensor
) -> dict[str, float]:
    """One D update on clean x, G's x_pert and the attacker's x_atk (all with labels y).

    The source head separates clean from perturbed images (Eq. 6); the class head classifies
    G's examples (Eq. 8) and A's untargeted PGD examples against that head (Eq. 7). x_pert is
    the G step's, detached, as in Algorithm 1."""
    kind = tr.cfg.objective.gan_loss
    x_atk = x  # the ablation (attacker=False) shows the class head clean x in its place
    if tr.attacker is not None:  # A attacks D's current class head, untargeted
        with model_mode(tr.D, "eval"):  # fixed spectral-norm estimates during PGD
            x_atk = tr.attacker(ClassHead(tr.D), x, y, generator=tr.rng)
    tr.D.train()
    source, cls = tr.D(torch.cat([x, x_pert, x_atk]))  # D has no batch norm: one pass
    b = x.shape[0]
    loss_s = (gan_loss(source[:b], clean=True, kind=kind)
              + gan_loss(source[b : 2 * b], clean=False, kind=kind))  # -Eq. 6
    loss_pert = F.cross_entropy(cls[b : 2 * b], y)  # -Eq. 8
    loss_adv = F.cross_entropy(cls[2 * b :], y)  # -Eq. 7
    descend(tr.opt_d, loss_s + loss_adv + loss_pert, list(tr.D.parameters()))
    return {"d_source": loss_s.item(), "d_class_pert": loss_pert.item(),
            "d_class_adv": loss_adv.item(),
            "d_adv_acc": (cls[2 * b :].argmax(1) == y).float().mean().item()}
