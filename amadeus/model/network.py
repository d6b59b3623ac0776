"""Performance RNN: the network of Performance-RNN-PyTorch, with its parameter names and shapes so
that the original project's checkpoints load unchanged.

Tokens in, logits out; it knows nothing of MIDI or of the codec beyond the vocabulary size. Training
and evaluation use `logits` (a whole window at once, teacher-forced); generation uses `step`.

The GRU cell (nn.GRU's: gates r, z, n; h' = n + z (h - n)) is written out where speed or
quantization needs it, six places in all, each held equal to the reference by a test:

- `nn.GRU`, in `PerformanceRNN.step`: the reference.
- `recurrence._GRULayer`, forward and backward, for training:
  test_recurrence.py::test_float32_equals_nn_gru_values_and_gradients.
- `stepper.NumpyStepper._gru`, fp32 generation on the CPU:
  test_generation.py::test_numpy_stepper_equals_model_step.
- `quant.gru.GRUCell.update`, calibration and the int8 model (fp16 element-wise):
  test_quant_gru.py::test_equals_nn_gru and ::test_fp16_gru_stays_close.
- `quant.stepper.fp16_cell`, int8 generation on any device:
  test_quant_quantizer.py::test_stepper_is_the_model_step_bit_for_bit.
- `quant/gru_cell.cpp`, int8 generation on AVX512 CPUs:
  test_quant_native.py::test_compiled_cell_is_fp16_cell_bit_for_bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

from amadeus.model.recurrence import dropout, gru_layer

_INT_FIELDS = ("init_dim", "event_dim", "control_dim", "hidden_dim", "gru_layers")


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape. `asdict(config)` is the original's `model_config` dict."""

    init_dim: int = 32  # noise that seeds the GRU's initial hidden state
    event_dim: int = 240  # vocabulary size V (the `prnn` codec); token V-1 starts every sequence
    control_dim: int = 24  # per-event conditioning: note density (12) + pitch-class histogram (12)
    hidden_dim: int = 512  # GRU width
    gru_layers: int = 3
    gru_dropout: float = 0.3  # between GRU layers, in training only

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        p = self.gru_dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"gru_dropout must be a number in [0, 1), got {p!r}")
        object.__setattr__(self, "gru_dropout", float(p))

    @classmethod
    def from_dict(cls, values: Mapping) -> ModelConfig:
        """Strict, because the dict comes from a file or a command line: every key, and no other."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(map(repr, set(values) - names))
        missing = sorted(names - set(values))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        if missing:
            raise ValueError(f"missing key(s) {', '.join(missing)}")
        return cls(**values)


class PerformanceRNN(nn.Module):
    """Event embedding + control -> GRU layers -> every layer's state -> logits of the next event.

    Shapes: T time steps, B batch, V = event_dim, C = control_dim, L = gru_layers, H = hidden_dim.
    """

    def __init__(
        self,
        event_dim: int,
        control_dim: int,
        init_dim: int,
        hidden_dim: int,
        gru_layers: int = 3,
        gru_dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.config = c = ModelConfig(
            init_dim=init_dim,
            event_dim=event_dim,
            control_dim=control_dim,
            hidden_dim=hidden_dim,
            gru_layers=gru_layers,
            gru_dropout=gru_dropout,
        )
        self.inithid_fc = nn.Linear(c.init_dim, c.gru_layers * c.hidden_dim)
        self.inithid_fc_activation = nn.Tanh()
        self.event_embedding = nn.Embedding(c.event_dim, c.event_dim)
        # input: embedding [V] + "no control" flag [1] + control [C]
        self.concat_input_fc = nn.Linear(c.event_dim + 1 + c.control_dim, c.hidden_dim)
        self.concat_input_fc_activation = nn.LeakyReLU(0.1)
        # Dropout acts between layers: one layer has none (nn.GRU warns if given one).
        dropout = c.gru_dropout if c.gru_layers > 1 else 0.0
        self.gru = nn.GRU(c.hidden_dim, c.hidden_dim, num_layers=c.gru_layers, dropout=dropout)
        self.output_fc = nn.Linear(c.gru_layers * c.hidden_dim, c.event_dim)
        # Dropout on the states output_fc reads, in training only: train.py's --output-dropout.
        # Not in the config, whose keys are the original's model_config; a session records it.
        self.output_dropout = 0.0
        self._init_weights()

    @classmethod
    def from_config(cls, config: ModelConfig) -> PerformanceRNN:
        return cls(**asdict(config))

    @property
    def start_token(self) -> int:
        """The input at step 0: the last token of the vocabulary, as in the original."""
        return self.config.event_dim - 1

    def _init_weights(self) -> None:
        # The original's initialisation; the GRU keeps PyTorch's default.
        for layer in (self.event_embedding, self.inithid_fc, self.concat_input_fc, self.output_fc):
            nn.init.xavier_normal_(layer.weight)
        nn.init.zeros_(self.inithid_fc.bias)
        nn.init.zeros_(self.output_fc.bias)

    def init_to_hidden(self, init: Tensor) -> Tensor:
        """Noise [B, init_dim] -> initial GRU state [L, B, H]."""
        c = self.config
        hidden = self.inithid_fc_activation(self.inithid_fc(init))  # [B, L*H]
        # A plain view, not a transpose: for B > 1 it mixes batch and layers, but the original's
        # trained weights expect exactly this.
        return hidden.view(c.gru_layers, init.shape[0], c.hidden_dim)

    def input_features(self, events_in: Tensor, controls: Tensor | None = None) -> Tensor:
        """What concat_input_fc reads [T, B, V+1+C]: the event's embedding, the "no control"
        flag (1 when `controls` is None, then zeros as the control), the control [T, B, C]."""
        embedded = self.event_embedding(events_in)  # [T, B, V]
        steps, batch = events_in.shape
        if controls is None:
            flag = embedded.new_ones(steps, batch, 1)
            controls = embedded.new_zeros(steps, batch, self.config.control_dim)
        elif controls.shape != (steps, batch, self.config.control_dim):
            raise ValueError(
                f"controls {tuple(controls.shape)} do not match events {(steps, batch)}"
            )
        else:
            flag = embedded.new_zeros(steps, batch, 1)
        return torch.cat([embedded, flag, controls.to(embedded.dtype)], -1)

    def embed_inputs(self, events_in: Tensor, controls: Tensor | None = None) -> Tensor:
        """Tokens [T, B] and controls [T, B, C] (None: unconditioned) -> GRU input [T, B, H]."""
        features = self.input_features(events_in, controls)
        return self.concat_input_fc_activation(self.concat_input_fc(features))

    def teacher_forced_inputs(self, events: Tensor, controls: Tensor | None = None) -> Tensor:
        """GRU inputs [T, B, H] for target events [T, B]: the start token, then events[:-1]."""
        start = events.new_full((1, events.shape[1]), self.start_token)
        return self.embed_inputs(torch.cat([start, events[:-1]]), controls)

    def logits(self, init: Tensor, events: Tensor, controls: Tensor | None = None) -> Tensor:
        """Teacher-forced logits [T, B, V] for target events [T, B]: step t sees the start token
        followed by events[:t], and controls[t].

        nn.GRU returns only the top layer's output at every step, and output_fc reads every layer,
        so each layer runs as one whole-window recurrence (`gru_layer`) with the GRU's own weights.
        Under autocast its products run in the autocast type (bfloat16 on CPUs that multiply in it).
        """
        x = self.teacher_forced_inputs(events, controls)  # [T, B, H]
        hidden = self.init_to_hidden(init)  # [L, B, H]
        device = x.device.type
        autocast = torch.is_autocast_enabled(device)
        dtype = torch.get_autocast_dtype(device) if autocast else torch.float32
        states = []
        for layer, weights in enumerate(self.gru.all_weights):
            if layer > 0:  # nn.GRU's dropout: on each layer's output that feeds the next
                x = dropout(x, self.config.gru_dropout, self.training)
            x = gru_layer(x, hidden[layer], weights, dtype)
            states.append(x)  # [T, B, H], before dropout, as the step-by-step GRU reports it
        states = dropout(torch.cat(states, -1), self.output_dropout, self.training)
        return self.output_fc(states)  # [T, B, L*H] -> [T, B, V]

    def forward(
        self,
        init: Tensor,
        events: Tensor,
        controls: Tensor | None = None,
        teacher_forcing_ratio: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The training pass, through `forward` so that DistributedDataParallel and module hooks
        see it: whole-window `logits`, or the step loop when teacher forcing is below 1.0."""
        if teacher_forcing_ratio >= 1.0:
            return self.logits(init, events, controls)
        return self.logits_stepwise(init, events, controls, teacher_forcing_ratio, generator)

    def step(
        self, event: Tensor, hidden: Tensor, control: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step, the original's forward: event [B], hidden [L, B, H], control [B, C] or None
        -> (logits [B, V], new hidden [L, B, H])."""
        x = self.embed_inputs(event[None], None if control is None else control[None])  # [1, B, H]
        _, hidden = self.gru(x, hidden)
        states = hidden.permute(1, 0, 2).reshape(event.shape[0], -1)  # [B, L*H], layer 0 first
        states = dropout(states, self.output_dropout, self.training)
        return self.output_fc(states), hidden

    def logits_stepwise(
        self,
        init: Tensor,
        events: Tensor,
        controls: Tensor | None = None,
        teacher_forcing_ratio: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Logits [T, B, V] one step at a time, for teacher forcing below 1.0: at each step, for
        the whole batch, a coin (CPU `generator`) decides between the true previous event and the
        model's own argmax, as the original's training did. At 1.0 it equals `logits`, slowly."""
        hidden = self.init_to_hidden(init)
        event = events.new_full(events.shape[1:], self.start_token)  # [B]
        outputs = []
        for t in range(events.shape[0]):
            if t > 0:
                forced = torch.rand((), generator=generator).item() < teacher_forcing_ratio
                event = events[t - 1] if forced else outputs[-1].argmax(-1)
            logits, hidden = self.step(event, hidden, None if controls is None else controls[t])
            outputs.append(logits)
        return torch.stack(outputs)  # [T, B, V]
