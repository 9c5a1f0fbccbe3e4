"""The PyTorch side of ``benchmarks.vs_pytorch``: what the Efficient-KD paper's
code trains and decodes (transformers' ``BertModel`` + dropout + ``nn.Linear``
+ pytorch-crf's ``CRF``). ``torch`` and ``torchcrf`` are optional and imported
only when a side is built (``bin/bench-vs-pytorch`` installs them)."""

from __future__ import annotations

import contextlib

import numpy as np
import transformers

from benchmarks._bert_crf import CLIP_NORM, DROPOUT, ENCODER_LR, HEAD_LR, TOTAL_STEPS, WARMUP, WEIGHT_DECAY
from jaxkd.data.batching import Batch


class TorchSide:
    """transformers' BertModel + dropout + linear + pytorch-crf, as the paper's
    code trains and decodes it."""

    def __init__(self, checkpoint, num_layers: int | None, head: dict, *, autocast: bool = False, device: str = "cpu"):
        import torch
        from torchcrf import CRF

        self.torch, self.device = torch, device
        self.precision = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
        extra = {} if num_layers is None else {"num_hidden_layers": num_layers}
        bert = transformers.BertModel.from_pretrained(str(checkpoint), add_pooling_layer=False, **extra)
        num_tags = head["kernel"].shape[1]
        linear = torch.nn.Linear(bert.config.hidden_size, num_tags)
        crf = CRF(num_tags, batch_first=True)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(head["kernel"].T))
            linear.bias.copy_(torch.from_numpy(head["bias"]))
            crf.transitions.copy_(torch.from_numpy(head["transitions"]))
            crf.start_transitions.copy_(torch.from_numpy(head["start"]))
            crf.end_transitions.copy_(torch.from_numpy(head["end"]))
        modules = {"bert": bert, "dropout": torch.nn.Dropout(DROPOUT), "linear": linear, "crf": crf}
        self.model = torch.nn.ModuleDict(modules)
        self.model.to(device)
        head_params = list(linear.parameters()) + list(crf.parameters())
        self.optimizer = torch.optim.AdamW(
            [{"params": bert.parameters(), "lr": ENCODER_LR}, {"params": head_params, "lr": HEAD_LR}],
            weight_decay=WEIGHT_DECAY,
        )
        warm = max(1, int(round(WARMUP * TOTAL_STEPS)))

        def factor(step):
            return step / warm if step < warm else max(0.0, (TOTAL_STEPS - step) / max(1, TOTAL_STEPS - warm))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.emissions_fn = self._emissions

    def tensors(self, batch: Batch) -> dict:
        t = self.torch
        arrays = {
            "input_ids": batch.input_ids.astype(np.int64),
            "attention_mask": batch.attention_mask.astype(np.int64),
            "word_index": batch.word_index.astype(np.int64),
            "word_mask": batch.word_mask,
            "tags": batch.tags.astype(np.int64),
        }
        return {k: t.from_numpy(v).to(self.device) for k, v in arrays.items()}

    def _emissions(self, input_ids, attention_mask, word_index):
        m = self.model
        hidden = m["bert"](input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        index = word_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        return m["linear"](m["dropout"](hidden.gather(1, index)))

    def compile(self) -> None:
        """Uses ``torch.compile`` for the encoder + emission layer (pytorch-crf's
        Python loops stay eager)."""
        self.emissions_fn = self.torch.compile(self._emissions)

    def eval_outputs(self, b: dict):
        self.model.eval()
        with self.torch.no_grad():
            emissions = self.emissions_fn(b["input_ids"], b["attention_mask"], b["word_index"])
            nll = -self.model["crf"](emissions, b["tags"], mask=b["word_mask"], reduction="none")
        return emissions.cpu().numpy(), nll.cpu().numpy(), self.infer(b)

    def train_step(self, b: dict):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision():
            emissions = self.emissions_fn(b["input_ids"], b["attention_mask"], b["word_index"])
        loss = -self.model["crf"](emissions.float(), b["tags"], mask=b["word_mask"], reduction="mean")
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP_NORM)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def infer(self, b: dict):
        self.model.eval()
        with self.torch.no_grad(), self.precision():
            emissions = self.emissions_fn(b["input_ids"], b["attention_mask"], b["word_index"])
            paths = self.model["crf"].decode(emissions.float(), mask=b["word_mask"])
        tags = np.zeros(b["word_mask"].shape, np.int32)
        for i, path in enumerate(paths):
            tags[i, : len(path)] = path
        return tags


def compiled_torch(checkpoint, num_layers, head, device: str) -> TorchSide | str:
    """A torch.compile'd PyTorch side, or the reason it cannot be had here."""
    try:
        side = TorchSide(checkpoint, num_layers, head, device=device)
        side.compile()
        return side
    except Exception as err:  # noqa: BLE001 - reported as a column, not fatal
        return f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
