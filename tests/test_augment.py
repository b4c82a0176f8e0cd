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


def _class_frequencies(sampler, counts=(400, 100, 25), epochs=40):
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    batches = loader.EpochBatches(labels, 128, train=True, sampler=sampler, seed=0)
    drawn = []
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        drawn += [labels[i] for batch in batches for i in batch]
    return np.bincount(drawn, minlength=len(counts)) / len(drawn)


def test_cmo_minority_sampler_at_alpha_one_draws_every_class_alike():
    """Park et al.'s get_weighted_sampler weights each image by 1 / n_k^alpha: at alpha 1 each class is drawn
    equally often (not in proportion to 1 / n_k)."""
    assert _class_frequencies(1.0) == pytest.approx([1 / 3] * 3, abs=0.02)
    assert _class_frequencies("class_balanced") == pytest.approx([1 / 3] * 3, abs=0.02)


def test_alpha_two_and_the_reversed_sampler_draw_classes_in_proportion_to_one_over_n():
    expected = np.array([1 / 400, 1 / 100, 1 / 25]) / sum(1 / n for n in (400, 100, 25))
    assert _class_frequencies(2.0) == pytest.approx(expected, abs=0.01)
    assert _class_frequencies("reversed") == pytest.approx(expected, abs=0.01)


def test_class_aware_sampler_visits_classes_in_runs_and_balances_them():
    """Kang et al.'s ClassAwareSampler: every class as often (to within one run of 4), a class's images cycled
    without repeats before any repeats, the batches shuffled."""
    counts = (400, 100, 25)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    generator = torch.Generator().manual_seed(0)
    order = loader.class_aware_order(labels, len(labels), 525, generator)
    frequencies = np.bincount(labels[order], minlength=3)
    assert len(order) == 525 and frequencies.max() - frequencies.min() <= 4
    assert sorted(order.tolist()) != order.tolist()
    unshuffled = loader.class_aware_order(labels, 120, 1, torch.Generator().manual_seed(0))  # batches of 1
    small = loader.class_aware_order(labels, 525, 1, torch.Generator().manual_seed(0))
    assert len(set(small[labels[small] == 2][:25].tolist())) == 25  # class 2's 25 images all before a repeat
    runs = labels[unshuffled].view(-1, 4)
    assert bool((runs == runs[:, :1]).all())  # visits of 4 images of one class before the batch shuffle
    assert set(labels[unshuffled].tolist()) == {0, 1, 2}


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


@pytest.mark.parametrize("kind, probability", [("cmo", 0.5), ("cutmix", 0.5), ("mixup", 1.0), ("remix", 1.0)])
def test_each_mix_defaults_to_its_official_share_of_batches(kind, probability):
    import train_args
    settings = train_args.resolve({**train_args.defaults(), "mix": kind})
    assert settings["mix_prob"] == probability
    images, labels = batch()
    mixer = augment.Mixer(kind, [50, 20, 5], probability=settings["mix_prob"], seed=2)
    minority = (images.flip(0), labels.flip(0))
    shares = np.mean([mixer(images, labels, minority) is not None for _ in range(600)])
    assert shares == pytest.approx(probability, abs=0.05)


def test_cmo_is_off_in_its_first_four_and_last_three_epochs():
    """cifar_train.py applies CMO when start_data_aug < epoch < epochs - end_data_aug, both 3: 0-based epochs
    4 .. E - 4."""
    import train_args
    settings = train_args.resolve({**train_args.defaults(), "mix": "cmo"})
    assert (settings["mix_off_first"], settings["mix_off_last"]) == (4, 3)
    images, labels = batch()
    mixer = augment.Mixer("cmo", [50, 20, 5], probability=1.0, seed=0, epochs=15, off_first=4, off_last=3)
    active = []
    for epoch in range(15):
        mixer.set_epoch(epoch)
        active.append(mixer(images, labels, (images, labels)) is not None)
    assert active == [epoch in range(4, 12) for epoch in range(15)]
    assert [augment.mixing_epoch(e, 200, 4, 3) for e in (3, 4, 196, 197)] == [False, True, True, False]


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


def test_an_odd_cutout_or_cutmix_side_loses_one_pixel_as_in_the_official_code():
    """DeVries & Taylor's y1 = y - L//2, y2 = y + L//2: a 5-pixel Cutout is a 4 x 4 square; Yun et al.'s box is
    2 * (cut // 2) wide."""
    out = augment.cutout(torch.ones(200, 3, 20, 20), 5, torch.Generator().manual_seed(1))
    areas = (out == 0).all(dim=1).flatten(1).sum(1)
    assert int(areas.max()) == 16
    rng = np.random.default_rng(0)
    boxes = [augment.cutmix_box(32, 32, 1 - (7 / 32) ** 2, rng) for _ in range(200)]  # cut = int(32 * 7/32) = 7
    assert max(bottom - top for top, bottom, _, _ in boxes) == 6


def _asymmetric_split(tmp_path, count=64):
    from PIL import Image
    folder = tmp_path / "train" / "a"
    folder.mkdir(parents=True)
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[:, :8] = 255  # white left half, black right half
    for i in range(count):
        Image.fromarray(pixels).save(folder / f"{i}.png")
    (tmp_path / "train" / "b").mkdir()
    Image.fromarray(pixels).save(tmp_path / "train" / "b" / "0.png")
    return loader.scan_split(tmp_path / "train")


@pytest.mark.parametrize("augment_name, flip, flips", [("randaugment", None, False), ("autoaugment", None, False),
                                                       ("randaugment", True, True), ("crop_flip", None, True),
                                                       ("crop", None, False)])
def test_a_policy_flips_only_with_flip(tmp_path, augment_name, flip, flips):
    split = _asymmetric_split(tmp_path)
    stream = loader.BatchStream(split, 16, 16, 65, train=True, device="cpu", augment=augment_name, flip=flip,
                                progress=False)
    stream.set_normalization([0, 0, 0], [1, 1, 1])
    stream.set_policy(None if augment_name in ("crop", "crop_flip") else (lambda image: image))  # crop and flip only
    seen_flipped = False
    for epoch in range(3):
        stream.set_epoch(epoch)
        for images, _ in stream:
            left, right = images[:, 0, :, 3:5].mean(dim=(1, 2)), images[:, 0, :, 11:13].mean(dim=(1, 2))
            seen_flipped |= bool((right > left).any())
    assert seen_flipped is flips


def test_policies_fill_with_the_colour_they_are_given():
    torch.manual_seed(0)
    image = torch.full((1, 3, 16, 16), 200, dtype=torch.uint8)
    rotate = augment.policy("randaugment", fill=(10, 20, 30), ops=1, magnitude=30)
    filled = set()
    for _ in range(60):
        out = augment.apply_policy(image, rotate)[0]
        corner = tuple(out[:, 0, 0].tolist())
        if corner != (200, 200, 200):
            filled.add(corner)
    assert (10, 20, 30) in filled
