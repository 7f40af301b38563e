"""A document is read once, ever: per-document KV snapshots composed in any order (issue 17).

Contract:
- When a corpus is read cold, each document's laid-out tokens are saved as their own
  snapshot (``SnapshotCache.save_document``: the cells at the positions they were read
  at, keyed by model, KV settings, runtime and the document's tokens, not the window),
  whatever corpus it was read in. A document already saved is not saved again.
- A corpus with no matching prefix snapshot whose documents have snapshots is
  assembled from them (``Composer.compose``): each document's cells are moved to its
  position in this corpus (the runtime moves them; llama.cpp rotates K again), then the
  prompt head (instructions, evaluated cold: it is short), the first ``k`` tokens of
  every document (its wrapper and first page marker, where a document read alone puts
  its attention sink: EPIC, ICML'25), each document's long runs of digits and the words
  before them (``fact_runs``: its codes and figures, whose cells answer for the corpus they
  were made in), every document that has no snapshot (read whole,
  in place, and saved afterwards) and the corpus's last token are evaluated again in
  place, in position order, so that each sees what precedes it in this corpus.
  ``RECOMPUTE_FIRST`` is k, chosen by ``benchmarks/compose.py`` (its table is in the
  module doc there).
- The quality gate: the corpus's last ``CHECK_TOKENS`` tokens are read with their logits
  twice: after a cold probe (the prompt head and the ``PROBE_TOKENS`` before them) and
  after the composition; the mean negative log-likelihood of each next token is the
  measure. A composition that does not predict the corpus's own text at least
  ``GATE_NATS`` better than a reader of those few tokens alone is not reading the corpus:
  it is dropped and the corpus read cold, with the numbers in the notice. Measured
  (docs/compose.md): correct compositions sit well below the probe, as the cold read
  does; a broken one (moved keys not rotated) at or above it. The
  last-token KL from the probe, the first gate, could not tell them apart: a broken
  composition's next token falls back to the local text, i.e. *towards* the probe.
- Refused with the reason said, and read cold: sliding-window models (their window's
  layers keep only recent cells, so a document's cells are not all there to move),
  runtimes that cannot move cached positions, and a quantized K (moving re-quantizes
  every key), all from ``Model.can_shift``.
- A damaged document snapshot (size or crc32, or tokens the runtime finds different)
  is removed and its document read again in place, never used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import EngineError, GenerationError
from engine.reading.prompts import Prompt
from engine.runtime.backend import Model, PrefillStats
from engine.warm import SnapshotCache, SnapshotKey, make_key

#: k: the first tokens of each document evaluated again in place. Chosen with
#: benchmarks/compose.py (docs/compose.md: SmolLM2, ten ~150-token documents, one seed,
#: a shared machine): the KL divergence from the cold read over question + 64-token
#: answer is lower at 16 than at 0 in all four cases (reorder 0.119 -> 0.093, remove
#: first 0.011 -> 0.006, insert 0.0029 -> 0.0026, other corpus 0.010 -> 0.004); 64 and
#: 256 lower it further at 3-9x the tokens. Provisional: one seed.
RECOMPUTE_FIRST = 16
#: A document's facts, read again in place: every run of at least this many tokens that
#: hold a digit (a code, an account number, a long figure), with the ``FACT_RUN_BEFORE``
#: tokens before it (what the fact is of). Their cells were made after another corpus's
#: documents and answer for that corpus. Measured (docs/compose.md, 2026-12-04: ten
#: documents, two of them first read in another corpus, ten seeds, every document's code
#: asked): found 31 of 60 at k = 16 alone, 42 of 60 with these runs (cold: 43), 282 tokens
#: read again of 1,151 (192 without); every digit (runs of one) found 43 but read 792.
#: 0: off.
FACT_RUN = 5
FACT_RUN_BEFORE = 8
#: The gate's check: the corpus's last tokens, whose own next tokens the composition must
#: predict at least as well as a cold read of them after only the instructions and the
#: ``PROBE_TOKENS`` before them.
CHECK_TOKENS = 32
PROBE_TOKENS = 32
#: How the prompt head's snapshot (instructions, the same in every corpus) is listed.
HEAD_LABEL = "(instructions)"
#: How much better (nats a token) than the cold probe the composition must predict the
#: check tokens. Calibrated in docs/compose.md: correct compositions read them 0.5-3.4
#: better than the probe (they see the corpus; the cold read does the same), compositions
#: whose moved keys were not rotated -0.02 to +1.5 worse (they see nothing useful).
GATE_NATS = 0.25


class ComposeRefused(EngineError):
    """This corpus cannot be assembled from document snapshots; the message says why."""


@dataclass(frozen=True)
class Composition:
    """A corpus assembled from document snapshots.

    ``documents`` came from snapshots, ``read`` were read whole in place (no snapshot);
    ``stats.evaluated`` counts every token evaluated again (head, first k of each,
    documents read, the last token, the probe); ``cold_estimate_s`` is about what a cold
    read would take (the documents' own read times when their snapshots were made).
    """

    documents: int
    read: int
    stats: PrefillStats
    check_nll: float
    probe_nll: float
    cold_estimate_s: float | None
    notices: tuple[str, ...] = field(default_factory=tuple)


def check_nll(rows: np.ndarray, tokens: Sequence[int]) -> float:
    """Mean negative log-likelihood (nats) of ``tokens[1:]`` under ``rows[:-1]``, the
    logits after each of ``tokens`` (``Model.logits_after_each``)."""
    x = rows[:-1].astype(np.float64)
    x -= x.max(axis=1, keepdims=True)
    log_p = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(tokens) - 1), list(tokens[1:])]))


def kl_divergence(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """KL(P || Q) in nats of the softmax distributions of two logit vectors."""
    p = p_logits.astype(np.float64) - float(np.max(p_logits))
    q = q_logits.astype(np.float64) - float(np.max(q_logits))
    log_p = p - np.log(np.sum(np.exp(p)))
    log_q = q - np.log(np.sum(np.exp(q)))
    return float(np.sum(np.exp(log_p) * (log_p - log_q)))


class Composer:
    """Saves and composes per-document snapshots for one model file. One thread at a time.

    Args:
        cache: the snapshot folder and rows.
        model_sha256: the model file's sha256 (in every key).
        model_name: shown in listings.
        swa_full: the model's sliding-window mode (in every key).
        k: the first tokens of each document evaluated again.
        gate_nats: how much better than the gate's probe the composition must read (nats a
            token); None: ``GATE_NATS``.
    """

    def __init__(
        self,
        cache: SnapshotCache,
        *,
        model_sha256: str,
        model_name: str,
        swa_full: bool,
        k: int = RECOMPUTE_FIRST,
        gate_nats: float | None = None,
        fact_run: int = FACT_RUN,
    ) -> None:
        self.cache = cache
        self.model_sha256 = model_sha256
        self.model_name = model_name
        self.swa_full = swa_full
        self.k = k
        self.gate_nats = GATE_NATS if gate_nats is None else gate_nats
        self.fact_run = fact_run
        self._texts: dict[int, str] = {}  # token -> its text, for fact_runs: once per token, not per place

    def key(self, model: Model, tokens: Sequence[int]) -> SnapshotKey:
        return make_key(model, model_sha256=self.model_sha256, corpus=tokens, swa_full=self.swa_full, document=True)

    def cost(self, model: Model, prompt: Prompt) -> int:
        """About how many tokens composing would evaluate (rows only, files not checked)."""
        spans = prompt.document_spans
        if not spans:
            return prompt.corpus_only_end
        head = spans[0][0]
        head_known = self.cache.find(self.key(model, prompt.tokens[:head])) is not None
        total = PROBE_TOKENS + 2 * CHECK_TOKENS + (0 if head_known else 2 * head)
        for a, b in spans:
            found = self.cache.find(self.key(model, prompt.tokens[a:b])) is not None
            total += sum(y - x for x, y in _merge(self._read_again(model, prompt.tokens, a, b))) if found else b - a
        return total

    def _read_again(self, model: Model, tokens: Sequence[int], a: int, b: int) -> list[tuple[int, int]]:
        """The spans of a document at ``tokens[a:b]`` read again in place when its snapshot
        is used: its first ``k`` tokens and its ``fact_runs``."""
        spans = [(a, min(b, a + self.k))]
        if self.fact_run:
            spans += fact_runs([self._text(model, t) for t in tokens[a:b]], a, min_run=self.fact_run)
        return spans

    def _text(self, model: Model, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = model.detokenize([token])
        return text

    def compose(
        self, model: Model, prompt: Prompt, *, names: Sequence[str] = (), also: Sequence[tuple[int, int]] = ()
    ) -> Composition | None:
        """Make ``model``'s context hold the prompt's corpus, assembled from its documents'
        snapshots, and check it against a cold probe. ``also``: more corpus spans
        evaluated again in place (besides the first ``k`` tokens of each document).

        Returns:
            the composition, or None when no document has a snapshot (nothing to assemble).

        Raises:
            ComposeRefused: the model cannot move cached positions, the runtime refused
                the files (they are removed), or the gate failed; the context is empty and
                the message says why (the caller reads cold and shows it).
        """
        why = model.can_shift
        if why is not None:
            raise ComposeRefused(f"The documents' snapshots cannot be assembled for this model: {why}. Read cold.")
        spans = prompt.document_spans
        end = prompt.corpus_only_end
        if not spans or spans[-1][1] != end:
            return None
        started = time.perf_counter()
        corpus = prompt.tokens[:end]
        head = spans[0][0]
        parts: list[tuple[Path, int]] = []
        keys: list[SnapshotKey] = []
        recompute: list[tuple[int, int]] = []
        notices: list[str] = []
        # The prompt head (instructions) is the same in every corpus, at the same place:
        # its snapshot is exact. Without one it is read again (it is short).
        head_part = None
        head_key = self.key(model, corpus[:head])
        head_path, _ = self.cache.document_file(head_key) if head else (None, None)
        if head_path is not None:
            head_part = (head_path, 0)
            parts.append(head_part)
            keys.append(head_key)
        else:
            recompute.append((0, head))
        cold_s = 0.0
        cold_tokens = 0
        for i, (a, b) in enumerate(spans):
            key = self.key(model, corpus[a:b])
            path, problem = self.cache.document_file(key)
            if problem is not None:
                notices.append(problem if not names else problem.replace("a document", names[i]))
            if path is None:
                recompute.append((a, b))
                continue
            parts.append((path, a))
            keys.append(key)
            recompute.extend(self._read_again(model, corpus, a, b))
            info = self.cache.find(key)
            if info is not None:
                cold_s += info.prefill_s
                cold_tokens += b - a
        if len(parts) == (head_part is not None):
            return None
        # The gate reads the corpus's last tokens twice, with their logits: after a cold
        # probe (the instructions and the PROBE_TOKENS before them) and after the composition.
        check_at = max(head + 1, end - CHECK_TOKENS)
        check = corpus[check_at:end]
        recompute.extend(also)
        spans_again = [(max(0, a), min(b, check_at)) for a, b in _merge(recompute) if a < check_at]
        local = corpus[max(head, check_at - PROBE_TOKENS) : check_at]
        model.clear()
        if head_part is not None:
            probe_stats = model.compose(
                [head_part], tokens=corpus[:head] + local, recompute=[(head, head + len(local))]
            )
        else:
            probe_stats = model.prefill(corpus[:head] + local)
        probe_nll = check_nll(model.logits_after_each(check), check)
        try:
            placed = [(path, at) for path, at in parts if at < check_at]  # a short last document may be all check
            stats = model.compose(placed, tokens=corpus[:check_at], recompute=spans_again)
            nll = check_nll(model.logits_after_each(check), check)
        except GenerationError as exc:
            model.clear()
            for key in keys:
                self.cache.remove(key)
            raise ComposeRefused(
                f"The documents' snapshots could not be assembled ({exc.message}); they were removed and the "
                "corpus is read cold."
            ) from exc
        if not np.isfinite(nll) or nll > probe_nll - self.gate_nats:
            model.clear()
            raise ComposeRefused(
                f"The corpus assembled from {len(keys)} snapshots failed its quality check: it predicts its own "
                f"last {len(check)} tokens no better than a cold read of them alone ({nll:.2f} against "
                f"{probe_nll:.2f} nats a token, {self.gate_nats:.2f} better needed); it is read cold instead."
            )
        for key in keys:
            self.cache.touch(key)
        seconds = time.perf_counter() - started
        evaluated = stats.evaluated + len(check) + probe_stats.evaluated + len(check)
        estimate = None
        if cold_tokens:
            estimate = cold_s * end / cold_tokens
        documents = len(parts) - (head_part is not None)
        return Composition(
            documents=documents,
            read=len(spans) - documents,
            stats=PrefillStats(evaluated=evaluated, reused=end - stats.evaluated - len(check), seconds=seconds),
            check_nll=nll,
            probe_nll=probe_nll,
            cold_estimate_s=estimate,
            notices=tuple(notices),
        )

    def save_documents(
        self, model: Model, prompt: Prompt, *, names: Sequence[str] = (), seconds_per_token: float = 0.0
    ) -> int:
        """Save a snapshot of every document of the prompt that has none; the context must
        hold the corpus (after a cold read or a composition).

        Returns:
            how many were saved.

        Raises:
            GenerationError: the runtime could not write one (those before it are kept).
        """
        if model.can_shift is not None:
            return 0  # never composable here: not worth the disk
        held = model.context_tokens
        saved = 0
        spans = list(prompt.document_spans)
        labels = [names[i] if i < len(names) else "" for i in range(len(spans))]
        if spans and spans[0][0] > 0:
            spans.insert(0, (0, spans[0][0]))
            labels.insert(0, HEAD_LABEL)
        for (a, b), label in zip(spans, labels, strict=True):
            if b > len(held) or held[a:b] != prompt.tokens[a:b]:
                break
            key = self.key(model, prompt.tokens[a:b])
            if self.cache.find(key) is not None:
                continue
            info = self.cache.save_document(
                model, key, a, b, model_name=self.model_name, label=label, prefill_s=(b - a) * seconds_per_token
            )
            saved += info is not None
        return saved


def fact_runs(pieces: Sequence[str], start: int = 0, *, min_run: int = FACT_RUN) -> list[tuple[int, int]]:
    """The spans (positions from ``start``) of one document whose tokens' texts are
    ``pieces`` that hold its facts: each run of at least ``min_run`` consecutive tokens with
    a digit in their text, from ``FACT_RUN_BEFORE`` tokens before it to one token after.
    Found without the question."""
    spans = []
    run = None
    end = len(pieces)
    for i in range(end + 1):
        digit = i < end and any(c.isdigit() for c in pieces[i])
        if digit and run is None:
            run = i
        elif not digit and run is not None:
            if i - run >= min_run:
                spans.append((start + max(0, run - FACT_RUN_BEFORE), start + min(end, i + 1)))
            run = None
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
