"""Model building blocks: shapes and lengths, padding invariance, step-by-step decoding equal to
teacher forcing, configuration errors, and a tiny Conformer-CTC that learns."""

from __future__ import annotations

import pytest
import torch

from onsei.errors import OptionError
from onsei.models.attention import (
    BahdanauAttention,
    LocationAwareAttention,
    RelPositionMultiHeadAttention,
)
from onsei.models.config import DecoderConfig, EncoderConfig, TransducerConfig
from onsei.models.decoders import build_decoder
from onsei.models.encoders import (
    Conv2dSubsampling,
    RelPositionalEncoding,
    build_encoder,
    sinusoids,
    stack_frames,
)
from onsei.models.transducer import Joint, Predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


IN_DIM = 16
VOCAB = 7  # blank 0, unk 1, symbols 2..5, sos/eos 6
SOS_EOS = VOCAB - 1

ENCODERS = {
    "blstm": EncoderConfig("blstm", hidden=8, layers=2, subsampling=4),
    "blstm-no-subsampling": EncoderConfig("blstm", hidden=8, layers=2, subsampling=1),
    "pblstm": EncoderConfig("pblstm", hidden=8, layers=3, subsampling=4),
    "pblstm-stacked": EncoderConfig("pblstm", hidden=8, layers=2, subsampling=4, stack_frames=2),
    "transformer": EncoderConfig("transformer", hidden=16, layers=2, heads=2, ff=32),
    "transformer-relative": EncoderConfig(
        "transformer", hidden=16, layers=2, heads=2, ff=32, positions="relative"
    ),
    "conformer": EncoderConfig("conformer", hidden=16, layers=2, heads=2, ff=32, conv_kernel=5),
}
EXPECTED_LENGTHS = {  # written out independently of the code
    "blstm": lambda t: t // 4,
    "blstm-no-subsampling": lambda t: t,
    "pblstm": lambda t: t // 2 // 2,
    "pblstm-stacked": lambda t: t // 2 // 2,
    "transformer": lambda t: ((t - 1) // 2 - 1) // 2,
    "transformer-relative": lambda t: ((t - 1) // 2 - 1) // 2,
    "conformer": lambda t: ((t - 1) // 2 - 1) // 2,
}


def padded_batch(alone: torch.Tensor, other_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``alone`` (1, T, F) as row 0 of a batch, its padding filled with large garbage, beside a
    longer random utterance; returns features (2, other_length, F) and lengths (2,)."""
    length = alone.shape[1]
    features = 10 * torch.randn(2, other_length, alone.shape[2])
    features[0, :length] = alone[0]
    return features, torch.tensor([length, other_length])


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_shapes_and_lengths(name: str):
    torch.manual_seed(0)
    encoder = build_encoder(ENCODERS[name], IN_DIM)
    lengths = torch.tensor([40, 33, 29])
    encoded, encoded_lengths = encoder(torch.randn(3, 40, IN_DIM), lengths)
    expected = torch.tensor([EXPECTED_LENGTHS[name](t) for t in lengths.tolist()])
    assert torch.equal(encoded_lengths, expected)
    assert encoded.shape == (3, int(expected.max()), encoder.output_dim)
    config = ENCODERS[name]
    lstm = config.type in ("blstm", "pblstm")
    assert encoder.output_dim == (2 * config.hidden if lstm else config.hidden)


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_padding_does_not_change_real_frames(name: str):
    torch.manual_seed(1)
    encoder = build_encoder(ENCODERS[name], IN_DIM).eval()
    alone = torch.randn(1, 27, IN_DIM)
    with torch.no_grad():
        expected, (length,) = encoder(alone, torch.tensor([27]))
        encoded, lengths = encoder(*padded_batch(alone, 45))
    assert lengths[0] == length
    torch.testing.assert_close(encoded[0, :length], expected[0], atol=1e-5, rtol=1e-5)


def test_stack_frames_puts_consecutive_frames_side_by_side():
    x = torch.arange(2 * 7 * 2, dtype=torch.float).reshape(2, 7, 2)
    stacked, lengths = stack_frames(x, torch.tensor([7, 5]), 3)
    assert stacked.shape == (2, 2, 6)
    assert torch.equal(stacked[0, 1], torch.cat([x[0, 3], x[0, 4], x[0, 5]]))
    assert lengths.tolist() == [2, 1]  # an incomplete last group is dropped


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_gradients_reach_every_parameter(name: str):
    torch.manual_seed(2)
    encoder = build_encoder(ENCODERS[name], IN_DIM).train()
    encoded, lengths = encoder(torch.randn(2, 30, IN_DIM), torch.tensor([30, 21]))
    mask = torch.arange(encoded.shape[1])[None, :] < lengths[:, None]
    encoded[mask].pow(2).sum().backward()
    for parameter_name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize(
    ("factor", "formula"),
    [
        (1, lambda t: t),
        (2, lambda t: (t - 1) // 2 - 2),
        (4, lambda t: ((t - 1) // 2 - 1) // 2),
        (6, lambda t: ((t - 1) // 2 - 2) // 3),
        (8, lambda t: (((t - 1) // 2 - 1) // 2 - 1) // 2),
    ],
)
def test_conv2d_subsampling_lengths_match_the_convolutions(factor: int, formula):
    subsampling = Conv2dSubsampling(IN_DIM, 8, factor)
    for frames in (17, 18, 19, 20, 31):
        output, (length,) = subsampling(torch.randn(1, frames, IN_DIM), torch.tensor([frames]))
        assert output.shape == (1, formula(frames), 8)
        assert length == formula(frames)


def test_conv2d_subsampling_refuses_too_few_features():
    with pytest.raises(ValueError, match="too few"):
        Conv2dSubsampling(6, 8, 8)


def test_relative_attention_equals_its_definition():
    torch.manual_seed(12)
    d_model, heads, length = 8, 2, 5
    attention = RelPositionMultiHeadAttention(d_model, heads, dropout=0.0)
    x = torch.randn(1, length, d_model)
    _, positions = RelPositionalEncoding(d_model, 0.0)(x)
    mask = torch.tensor([[True, True, True, True, False]])
    d_k = d_model // heads
    q = attention.query(x).view(length, heads, d_k)
    k = attention.key(x).view(length, heads, d_k)
    v = attention.value(x).view(length, heads, d_k)
    scores = torch.full((heads, length, length), float("-inf"))
    for i in range(length):
        for j in range(4):  # the last key is padding
            p = attention.position(sinusoids(torch.tensor([i - j]), d_model)).view(heads, d_k)
            content = ((q[i] + attention.content_bias) * k[j]).sum(-1)
            position = ((q[i] + attention.position_bias) * p).sum(-1)
            scores[:, i, j] = (content + position) / d_k**0.5
    expected = torch.einsum("hij,jhd->ihd", scores.softmax(-1), v).reshape(1, length, d_model)
    torch.testing.assert_close(attention(x, positions, mask), attention.out(expected))


@pytest.mark.parametrize("attention_class", [BahdanauAttention, LocationAwareAttention])
def test_attention_weights_cover_only_real_frames(attention_class):
    torch.manual_seed(3)
    attention = attention_class(6, 5, 4)
    keys = torch.randn(2, 9, 5)
    mask = torch.arange(9)[None, :] < torch.tensor([9, 4])[:, None]
    previous = torch.softmax(torch.randn(2, 9), -1) * mask
    query = torch.randn(2, 6)
    context, weights = attention(query, keys, attention.precompute(keys), mask, previous)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()
    torch.testing.assert_close(context, torch.einsum("bt,btk->bk", weights, keys))
    # Row 1 alone (no padding) gives the same result.
    alone_context, alone_weights = attention(
        query[1:], keys[1:, :4], attention.precompute(keys[1:, :4]), mask[1:, :4], previous[1:, :4]
    )
    torch.testing.assert_close(alone_weights, weights[1:, :4])
    torch.testing.assert_close(alone_context, context[1:])


def test_location_aware_attention_depends_on_previous_weights():
    torch.manual_seed(4)
    attention = LocationAwareAttention(6, 5, 4, channels=3, kernel=3)
    keys, query = torch.randn(1, 8, 5), torch.randn(1, 6)
    mask = torch.ones(1, 8, dtype=torch.bool)
    early, late = torch.zeros(1, 8), torch.zeros(1, 8)
    early[0, 1], late[0, 6] = 1.0, 1.0
    processed = attention.precompute(keys)
    _, weights_early = attention(query, keys, processed, mask, early)
    _, weights_late = attention(query, keys, processed, mask, late)
    assert not torch.allclose(weights_early, weights_late)


DECODERS = {
    "lstm-location": DecoderConfig("lstm", hidden=12, layers=2, embed=6, attention_dim=8),
    "lstm-bahdanau": DecoderConfig(
        "lstm", hidden=12, layers=1, embed=6, attention="bahdanau", attention_dim=8
    ),
    "transformer": DecoderConfig("transformer", hidden=12, layers=2, heads=3, ff=24),
    "transformer-same-width": DecoderConfig("transformer", hidden=10, layers=1, heads=2, ff=16),
}
ENCODER_DIM = 10


def decoder_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoder outputs (2, 9, 10) with lengths (9, 6) and inputs [sos, y...] (2, 5)."""
    encoded = torch.randn(2, 9, ENCODER_DIM)
    encoded[1, 6:] = 100.0  # garbage on padding
    inputs = torch.tensor([[SOS_EOS, 2, 3, 4, 5], [SOS_EOS, 5, 4, SOS_EOS, SOS_EOS]])
    return encoded, torch.tensor([9, 6]), inputs


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_step_equals_teacher_forcing(name: str):
    torch.manual_seed(5)
    decoder = build_decoder(DECODERS[name], VOCAB, ENCODER_DIM).eval()
    encoded, lengths, inputs = decoder_inputs()
    with torch.no_grad():
        logits = decoder(encoded, lengths, inputs)
        assert logits.shape == (2, 5, VOCAB)
        state = decoder.init_state(encoded, lengths)
        for u in range(inputs.shape[1]):
            log_probs, state = decoder.step(inputs[:, : u + 1], state)
            torch.testing.assert_close(log_probs, logits[:, u].log_softmax(-1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_ignores_encoder_padding(name: str):
    torch.manual_seed(6)
    decoder = build_decoder(DECODERS[name], VOCAB, ENCODER_DIM).eval()
    encoded, lengths, inputs = decoder_inputs()
    with torch.no_grad():
        batch = decoder(encoded, lengths, inputs)
        alone = decoder(encoded[1:, :6], lengths[1:], inputs[1:])
    torch.testing.assert_close(batch[1:], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_select_state_repeats_rows(name: str):
    torch.manual_seed(7)
    decoder = build_decoder(DECODERS[name], VOCAB, ENCODER_DIM).eval()
    encoded, lengths, inputs = decoder_inputs()
    with torch.no_grad():
        state = decoder.init_state(encoded, lengths)
        _, state = decoder.step(inputs[:, :1], state)
        _, state = decoder.step(inputs[:, :2], state)
        expected, _ = decoder.step(inputs[:, :3], state)
        indices = torch.tensor([1, 1, 0])
        selected, _ = decoder.step(inputs[indices, :3], decoder.select_state(state, indices))
    torch.testing.assert_close(selected, expected[indices], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(expected[0], expected[1])


def test_decoder_gradients_flow_to_the_encoder_output():
    torch.manual_seed(8)
    for config in DECODERS.values():
        decoder = build_decoder(config, VOCAB, ENCODER_DIM).train()
        encoded, lengths, inputs = decoder_inputs()
        encoded.requires_grad_()
        decoder(encoded, lengths, inputs).logsumexp(-1).sum().backward()
        assert encoded.grad[0].abs().sum() > 0
        assert (encoded.grad[1, 6:] == 0).all()  # padding gets no gradient


def test_transformer_decoder_starts_with_a_unit_scale_residual_stream():
    """At initialisation the scaled token embeddings are near unit scale, so what the
    cross-attention adds is not drowned (with N(0, 1) embeddings times sqrt(144) it was
    1/170 of the stream and attention-only training learned to use the encoder slowly)."""
    torch.manual_seed(9)
    config = DecoderConfig("transformer", hidden=144, layers=1, heads=4, ff=32, dropout=0.0)
    decoder = build_decoder(config, 30, 144)
    with torch.no_grad():
        stream = decoder.positions(decoder.embed(torch.arange(30)[None]))
    assert 0.5 < float(stream.std()) < 2.0


TRANSDUCER = TransducerConfig(embed=6, hidden=8, layers=2, joint=12)


def test_predictor_step_equals_forward_and_select_state():
    torch.manual_seed(9)
    predictor = Predictor(VOCAB, TRANSDUCER).eval()
    inputs = torch.tensor([[0, 2, 3, 4], [0, 5, 5, 2]])
    with torch.no_grad():
        output = predictor(inputs)
        assert output.shape == (2, 4, predictor.output_dim)
        state = predictor.init_state(2)
        for u in range(4):
            step_output, state = predictor.step(inputs[:, u], state)
            torch.testing.assert_close(step_output, output[:, u], atol=1e-5, rtol=1e-5)
        indices = torch.tensor([1, 0, 1])
        repeated, _ = predictor.step(
            torch.tensor([3, 3, 3]), predictor.select_state(state, indices)
        )
        original, _ = predictor.step(torch.tensor([3, 3]), state)
    torch.testing.assert_close(repeated, original[indices])


def test_joint_shapes_and_step_equals_forward():
    torch.manual_seed(10)
    joint = Joint(ENCODER_DIM, 8, TRANSDUCER, VOCAB)
    encoded, predicted = torch.randn(2, 5, ENCODER_DIM), torch.randn(2, 4, 8)
    logits = joint(encoded, predicted)
    assert logits.shape == (2, 5, 4, VOCAB)
    for t, u in [(0, 0), (3, 2), (4, 3)]:
        torch.testing.assert_close(joint.step(encoded[:, t], predicted[:, u]), logits[:, t, u])


def test_default_configs_are_valid():
    EncoderConfig().validate()
    DecoderConfig().validate()
    TransducerConfig().validate()
    for config in ENCODERS.values():
        config.validate()


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (EncoderConfig(type="lstm"), "encoder.type"),
        (EncoderConfig(hidden=0), "encoder.hidden"),
        (EncoderConfig(layers=0), "encoder.layers"),
        (EncoderConfig(hidden=250, heads=4), "encoder.heads"),
        (EncoderConfig(conv_kernel=14), "encoder.conv_kernel"),
        (EncoderConfig(subsampling=3), "encoder.subsampling"),
        (EncoderConfig(type="pblstm", subsampling=6), "encoder.subsampling"),
        (EncoderConfig(type="pblstm", subsampling=8, layers=3), "encoder.layers"),
        (EncoderConfig(type="pblstm", subsampling=4, stack_frames=8), "encoder.stack_frames"),
        (EncoderConfig(type="blstm", stack_frames=2), "encoder.stack_frames"),
        (EncoderConfig(type="transformer", positions="rotary"), "encoder.positions"),
        (EncoderConfig(type="conformer", positions="relative"), "encoder.positions"),
        (EncoderConfig(dropout=1.0), "encoder.dropout"),
        (DecoderConfig(type="rnn"), "decoder.type"),
        (DecoderConfig(attention="dot"), "decoder.attention"),
        (DecoderConfig(hidden=100, heads=3), "decoder.heads"),
        (DecoderConfig(embed=0), "decoder.embed"),
        (TransducerConfig(joint=0), "transducer.joint"),
        (TransducerConfig(dropout=-0.1), "transducer.dropout"),
    ],
)
def test_config_errors_name_the_field(config, field: str):
    with pytest.raises(OptionError, match=rf"^{field}: ") as error:
        config.validate()
    assert "\n" not in str(error.value)


def test_heads_need_not_divide_hidden_of_lstm_models():
    EncoderConfig(type="blstm", hidden=250, heads=4).validate()
    DecoderConfig(type="lstm", hidden=100, heads=3).validate()


def test_small_conformer_ctc_overfits_two_utterances():
    torch.manual_seed(11)
    config = EncoderConfig(
        "conformer", hidden=32, layers=2, heads=4, ff=64, dropout=0.0, conv_kernel=5
    )
    encoder = build_encoder(config, IN_DIM)
    head = torch.nn.Linear(encoder.output_dim, VOCAB)
    features = torch.randn(2, 60, IN_DIM)
    lengths = torch.tensor([60, 52])
    targets = torch.tensor([[2, 3, 4, 5, 2], [5, 4, 3, 0, 0]])
    target_lengths = torch.tensor([5, 3])
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=3e-3)
    for _ in range(100):
        encoded, encoded_lengths = encoder(features, lengths)
        log_probs = head(encoded).log_softmax(-1).transpose(0, 1)
        loss = torch.nn.functional.ctc_loss(log_probs, targets, encoded_lengths, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_a_chunked_conformer_keeps_the_outputs_of_finished_chunks_as_the_input_grows():
    from onsei.models.encoders import build_encoder

    torch.manual_seed(0)
    config = EncoderConfig(type="conformer", hidden=32, layers=2, heads=4, ff=64, chunk_size=4)
    encoder = build_encoder(config, in_dim=20).eval()
    features = torch.randn(1, 120, 20)
    with torch.no_grad():
        full, _ = encoder(features, torch.tensor([120]))
        for prefix in (37, 64, 90):
            part, frames = encoder(features[:, :prefix], torch.tensor([prefix]))
            # frames whose chunk is complete and whose subsampling window is inside the prefix
            complete = (int(frames) // 4) * 4
            assert torch.allclose(part[0, :complete], full[0, :complete], atol=1e-5), prefix
            assert complete > 0
    unchunked = build_encoder(
        EncoderConfig(type="conformer", hidden=32, layers=2, heads=4, ff=64), 20
    )
    with torch.no_grad():
        a, _ = unchunked.eval()(features, torch.tensor([120]))
        b, _ = unchunked(features[:, :64], torch.tensor([64]))
    assert not torch.allclose(a[0, :8], b[0, :8], atol=1e-5)  # full context: the future counts


def test_chunk_size_is_for_the_conformer_only():
    with pytest.raises(OptionError, match="encoder.chunk_size: a positive number of frames"):
        EncoderConfig(type="blstm", chunk_size=8).validate()


def test_pblstm_stacks_frames_before_a_shorter_pyramid():
    config = EncoderConfig("pblstm", hidden=8, layers=3, subsampling=8, stack_frames=2)
    encoder = build_encoder(config, IN_DIM)
    sizes = [lstm.input_size for lstm in encoder.layers]
    assert sizes == [2 * IN_DIM, 4 * config.hidden, 4 * config.hidden]  # then two pyramid layers
