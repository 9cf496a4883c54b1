"""Multi-positive InfoNCE: every text is pulled toward all texts of its concept."""
from __future__ import annotations

import torch


def multi_positive_infonce(emb: torch.Tensor, labels: torch.Tensor, temperature: float = 0.05
                           ) -> dict[str, torch.Tensor]:
    """Supervised contrastive loss over one batch of texts.

    For anchor ``i`` with positives ``P(i)`` (same label, not itself), the term is
    ``-mean_{p in P(i)} log softmax_{a != i}(s_ia / T)[p]``; anchors without positives are skipped.
    Every other text in the batch is a negative, so putting siblings and mirrors of a concept in
    the same batch makes them hard negatives.

    Args:
        emb: (B, D) L2-normalised embeddings.
        labels: (B,) integer concept labels.
        temperature: softmax temperature ``T`` (> 0).

    Returns:
        ``{"loss": total, "infonce": the loss term, "pos_sim": mean positive cosine,
        "neg_sim": mean negative cosine, "hard_neg_sim": mean of each anchor's closest negative}``
        (only ``loss`` carries gradients).

    Raises:
        ValueError: ``temperature`` is not positive or shapes disagree.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if emb.ndim != 2 or labels.shape != emb.shape[:1]:
        raise ValueError(f"expected emb (B, D) and labels (B,), got {tuple(emb.shape)} and {tuple(labels.shape)}")
    sim = emb @ emb.T  # (B, B) cosine
    eye = torch.eye(len(emb), dtype=torch.bool, device=emb.device)
    pos = (labels[:, None] == labels[None, :]) & ~eye  # (B, B)
    logits = (sim / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = pos.sum(1)
    valid = n_pos > 0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0)).sum(1) / n_pos.clamp_min(1)
    loss = per_anchor[valid].mean() if valid.any() else sim.sum() * 0.0
    with torch.no_grad():
        neg = ~pos & ~eye
        pos_sim = sim[pos].mean() if pos.any() else sim.new_zeros(())
        neg_sim = sim[neg].mean() if neg.any() else sim.new_zeros(())
        hard = sim.masked_fill(~neg, -2.0).amax(1)
        hard_neg_sim = hard[hard > -2].mean() if neg.any() else sim.new_zeros(())
    return {"loss": loss, "infonce": loss.detach(), "pos_sim": pos_sim, "neg_sim": neg_sim,
            "hard_neg_sim": hard_neg_sim}
