import numpy as np
import torch

from biojepa.data.schema import Condition
from biojepa.models.actions import ActionVocabulary
from biojepa.models.module import BioJepaModule, ModelConfig

MEASURED = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.5]])


# known edges of C (and of A, which is measured) onto the three genes
EDGES = {"A": [1.0, 1.0, 1.0], "C": [1.0, -1.0, 0.0]}


def _network_lookup(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rows = np.array([EDGES.get(n, [0.0, 0.0, 0.0]) for n in names], dtype=np.float32)
    return rows, np.abs(rows).sum(1) > 0


def _module(blind: bool = False) -> tuple[BioJepaModule, ActionVocabulary]:
    torch.manual_seed(0)
    vocab = ActionVocabulary(
        ["A", "B", "C", "D"], prior_dim=0, fingerprint_bits=8, network_lookup=_network_lookup, network_width=3
    )
    config = ModelConfig(
        n_genes=3, n_targets=4, n_actions=4, n_memory=2, fingerprint_bits=8, latent_dim=4, encoder_hidden=8,
        action_dim=8, predictor_hidden=8, predictor_blocks=1, decoder_hidden=8, blind=blind,
    )  # fmt: skip
    module = BioJepaModule(config).eval()
    memory = vocab.encode([Condition("A", "ctx", "crispr_ko"), Condition("B", "ctx", "crispr_ko")])
    module.set_memory(memory, MEASURED, torch.zeros(2, 4))
    # give the predictor a non-trivial (non-additive) response so the latent path matters
    with torch.no_grad():
        for p in module.predictor.parameters():
            p.normal_(0.0, 0.5)
    return module, vocab


def _predict(module: BioJepaModule, vocab: ActionVocabulary, labels: list[str]) -> torch.Tensor:
    actions = vocab.encode([Condition(label, "ctx", "crispr_ko") for label in labels], strict=False)
    z_pre = torch.randn(5, 4, generator=torch.Generator().manual_seed(1)).repeat(len(labels), 1)
    groups = torch.arange(len(labels)).repeat_interleave(5)
    with torch.no_grad():
        return module.pseudobulk_delta(z_pre, torch.zeros(len(z_pre)), groups, len(labels), actions)


def test_a_measured_single_is_predicted_as_measured():
    module, vocab = _module()
    predicted = _predict(module, vocab, ["A", "B"])
    torch.testing.assert_close(predicted, MEASURED)


def test_a_pair_of_measured_singles_is_additive_plus_the_gated_latent_interaction():
    module, vocab = _module()
    # gate 0 (no validation evidence for interactions): exactly the additive expectation
    torch.testing.assert_close(_predict(module, vocab, ["A+B"]), MEASURED.sum(0, keepdim=True))
    module.effect.combination_gate.fill_(0.5)
    pair = _predict(module, vocab, ["A+B"])
    diffs = []
    for labels in (["A+B"], ["A"], ["B"]):
        actions = vocab.encode([Condition(labels[0], "ctx", "crispr_ko")])
        z_pre = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            one_group = torch.zeros(5, dtype=torch.long)
            diff, _ = module.decoded_delta(z_pre, torch.zeros(5), one_group, 1, actions)
        diffs.append(diff)
    interaction = diffs[0] - diffs[1] - diffs[2]
    assert interaction.abs().max() > 1e-3  # the latent path is not additive here
    torch.testing.assert_close(pair, MEASURED.sum(0, keepdim=True) + 0.5 * interaction)


def test_an_unseen_target_is_retrieved_and_the_blind_model_uses_no_measured_single():
    module, vocab = _module()
    unseen = _predict(module, vocab, ["C"])
    assert not torch.allclose(unseen, MEASURED[:1]) and not torch.allclose(unseen, MEASURED[1:])
    blind, vocab = _module(blind=True)
    predicted = _predict(blind, vocab, ["A", "C", "D"])
    torch.testing.assert_close(predicted[0], predicted[1])
    torch.testing.assert_close(predicted[1], predicted[2])


def test_a_target_measured_in_two_contexts_uses_the_measurement_of_the_closest_context():
    module, vocab = _module()
    memory = vocab.encode([Condition("A", "ctx1", "crispr_ko"), Condition("A", "ctx2", "crispr_ko")])
    contexts = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    module.set_memory(memory, MEASURED, contexts)
    actions = vocab.encode([Condition("A", "ctx2", "crispr_ko"), Condition("A", "ctx1", "crispr_ko")])
    z_context = torch.tensor([[0.1, 0.9, 0.0, 0.0], [0.8, 0.2, 0.0, 0.0]])
    retrieved, measured, _, is_measured = module.memory_components(actions, z_context)
    torch.testing.assert_close(measured, MEASURED.flip(0))
    assert not retrieved.any() and is_measured.all()


def test_a_pair_with_an_unseen_target_adds_that_targets_own_prediction():
    module, vocab = _module()
    pair, unseen = _predict(module, vocab, ["A+C", "C"])
    # gate 0: measured A + the model's prediction of C alone (retrieval + latent), nothing else
    torch.testing.assert_close(pair, MEASURED[0] + unseen)


def test_a_mixed_batch_predicts_each_action_as_it_would_alone():
    module, vocab = _module()
    module.effect.combination_gate.fill_(0.7)
    labels = ["A", "A+C", "C", "B+D", "A+B"]
    together = _predict(module, vocab, labels)
    alone = torch.cat([_predict(module, vocab, [label]) for label in labels])
    torch.testing.assert_close(together, alone)


def test_the_latent_gate_scales_only_the_latent_path_of_unmeasured_targets():
    module, vocab = _module()
    full = _predict(module, vocab, ["A", "C"])
    actions = vocab.encode([Condition("C", "ctx", "crispr_ko")], strict=False)
    z_pre = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        retrieved, _, gain, _ = module.memory_components(actions, z_pre.mean(0, keepdim=True))
    module.effect.latent_gate.fill_(0.0)
    gated = _predict(module, vocab, ["A", "C"])
    torch.testing.assert_close(gated[0], full[0])  # a measured target has no latent part to gate
    torch.testing.assert_close(gated[1:], gain * retrieved)
    assert not torch.allclose(gated[1], full[1])


def test_known_edges_add_to_unmeasured_targets_only_and_never_to_the_blind_model():
    module, vocab = _module()
    before = _predict(module, vocab, ["A", "C", "A+C"])
    module.effect.network_weight.fill_(0.5)
    after = _predict(module, vocab, ["A", "C", "A+C"])
    knockout_of_c = -0.5 * torch.tensor(EDGES["C"])
    torch.testing.assert_close(after - before, torch.stack([torch.zeros(3), knockout_of_c, knockout_of_c]))
    blind, vocab = _module(blind=True)
    before = _predict(blind, vocab, ["C"])
    blind.effect.network_weight.fill_(0.5)
    torch.testing.assert_close(_predict(blind, vocab, ["C"]), before)
