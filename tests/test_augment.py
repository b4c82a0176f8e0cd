"""augment.py: the AutoAugment family per image, Cutout, and mixing (mixup, CutMix, Remix, CMO) with the loss of a
mixed batch."""
import numpy as np
import pytest
import torch

import augment
import criterion
import loader


def batch(n=6, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=generator), torch.tensor([0, 1, 2, 0, 1, 2][:n])


def test_mixup_mixes_images_and_labels_by_lambda():
    images, labels = batch()
    mixed = augment.Mixer("mixup", [50, 20, 5], alpha=1.0, seed=3)(images, labels)
    lam = float(mixed.lam[0])
    assert torch.all(mixed.lam == lam) and 0 < lam < 1 and torch.equal(mixed.targets_a, labels)
    partners = _partners(images, mixed, lam)
    assert sorted(partners) == list(range(len(images)))  # a permutation of the batch
    assert torch.allclose(mixed.images, lam * images + (1 - lam) * images[partners], atol=1e-6)
    assert torch.equal(mixed.targets_b, labels[partners])


def _partners(images, mixed, lam):
    """The index of each image's partner, recovered from the mixed images."""
    partners = []
    for i, image in enumerate(mixed.images):
        rest = (image - lam * images[i]) / (1 - lam)
        partners.append(int(torch.argmin(((images - rest) ** 2).flatten(1).sum(1))))
    return partners


def test_cutmix_box_area_is_one_minus_lambda_after_clipping():
    rng = np.random.default_rng(0)
    for lam in (0.1, 0.5, 0.93):
        for _ in range(50):
            top, bottom, left, right = augment.cutmix_box(16, 12, lam, rng)
            assert 0 <= top <= bottom <= 16 and 0 <= left <= right <= 12
            images, source = torch.zeros(2, 3, 16, 12), torch.ones(2, 3, 16, 12)
            pasted, kept = augment.paste(images, source, (top, bottom, left, right))
            assert pasted.mean().item() == pytest.approx(1 - kept)  # the pasted share is the box's area share
            assert kept >= lam - 1e-9  # clipping at the border only shrinks the box
    images = torch.arange(6.0)[:, None, None, None].expand(6, 3, 8, 8).clone()  # image i is all i
    mixed = augment.Mixer("cutmix", [50, 20, 5], seed=1)(images, torch.tensor([0, 1, 2, 0, 1, 2]))
    own = (mixed.images == images).all(dim=1).float().mean(dim=(1, 2))
    paired = own < 1  # an image drawn as its own partner keeps all its pixels
    assert paired.sum() >= 4 and torch.allclose(own[paired], mixed.lam[paired], atol=1e-6)


def test_mixed_loss_is_the_two_label_formula():
    torch.manual_seed(0)
    logits, a, b = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([2, 2, 0, 1, 0, 1])
    lam = torch.full((6,), 0.3)
    for name in ("ERM", "CCE", "FL", "BS", "LA", "CB", "LDAM"):
        loss = criterion.get_criterion(name, 3, class_counts=[50, 20, 5])
        mixed = loss(logits, a, lam) + loss(logits, b, 1 - lam)
        assert mixed.item() == pytest.approx(0.3 * loss(logits, a).item() + 0.7 * loss(logits, b).item(), rel=1e-6)
    shares = torch.tensor([1.0, 0.0, 0.25, 0.5, 0.75, 0.1])  # Remix: one share per image
    loss = criterion.get_criterion("ERM", 3)
    per_image = torch.nn.functional.cross_entropy(logits, a, reduction="none") * shares + \
        torch.nn.functional.cross_entropy(logits, b, reduction="none") * (1 - shares)
    assert (loss(logits, a, shares) + loss(logits, b, 1 - shares)).item() == pytest.approx(per_image.mean().item())
    assert criterion.OBJECTIVES["COT"].mixes is False


def test_remix_label_rule_on_hand_made_counts():
    counts_a = torch.tensor([300, 300, 100, 10, 10, 100])
    counts_b = torch.tensor([10, 10, 100, 300, 300, 50])
    lam = torch.tensor([0.3, 0.7, 0.3, 0.8, 0.3, 0.4])
    shares = [float(augment.remix_lambda(value, counts_a[i:i + 1], counts_b[i:i + 1])) for i, value in enumerate(lam)]
    # a 30x larger, lam < 0.5: all b's; a larger, lam >= 0.5: lam; equal sizes: lam;
    # b 30x larger, 1 - lam < 0.5: all a's; b larger, 1 - lam >= 0.5: lam; ratio 2 < kappa: lam
    assert shares == pytest.approx([0.0, 0.7, 0.3, 1.0, 0.3, 0.4])


def test_reversed_sampler_draws_classes_in_proportion_to_one_over_n():
    counts = [400, 100, 25]
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    batches = loader.EpochBatches(labels, 525, train=True, sampler="reversed", seed=0)
    drawn = []
    for epoch in range(40):
        batches.set_epoch(epoch)
        drawn += [labels[i] for batch in batches for i in batch]
    frequencies = np.bincount(drawn, minlength=3) / len(drawn)
    expected = np.array([1 / 400, 1 / 100, 1 / 25]) / sum(1 / n for n in counts)
    assert frequencies == pytest.approx(expected, abs=0.01)


def test_cmo_pastes_minority_images_onto_the_batch():
    images, labels = batch()
    minority = (torch.full_like(images, 7.0), torch.full_like(labels, 2))
    mixed = augment.Mixer("cmo", [50, 20, 5], seed=4)(images, labels, minority)
    assert torch.equal(mixed.targets_a, labels) and torch.equal(mixed.targets_b, torch.full_like(labels, 2))
    pasted = (mixed.images == 7.0).all(dim=1).float().mean(dim=(1, 2))
    assert torch.allclose(pasted, 1 - mixed.lam, atol=1e-6)


def test_mix_prob_leaves_that_share_of_batches_unmixed():
    images, labels = batch()
    mixer = augment.Mixer("mixup", [50, 20, 5], probability=0.3, seed=0)
    mixed = [mixer(images, labels) is not None for _ in range(400)]
    assert np.mean(mixed) == pytest.approx(0.3, abs=0.06)


@pytest.mark.parametrize("name", augment.POLICIES)
def test_each_policy_gives_each_image_its_own_operations(name):
    torch.manual_seed(0)
    image = (torch.arange(3 * 16 * 16) % 251).to(torch.uint8).reshape(3, 16, 16)
    out = augment.apply_policy(image.expand(8, 3, 16, 16), augment.policy(name))
    assert out.dtype == torch.uint8 and out.shape == (8, 3, 16, 16)
    assert len({bytes(one.numpy()) for one in out}) > 2  # the same image, transformed differently


def test_cutout_zeroes_one_square_per_image_inside_the_image():
    images = torch.ones(64, 3, 10, 10)
    out = augment.cutout(images, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).all(dim=1)
    areas = zeros.flatten(1).sum(1)
    assert torch.all(areas <= 16) and torch.all(areas >= 4) and (areas == 16).any()  # cut at the border
    for square in zeros:
        rows, cols = torch.nonzero(square, as_tuple=True)
        assert rows.max() - rows.min() < 4 and cols.max() - cols.min() < 4
        assert square.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle
    assert len({tuple(torch.nonzero(square)[0].tolist()) for square in zeros}) > 10
