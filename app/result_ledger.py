"""Which frames have a mask, which annotations each propagated result was computed from, and so which are out of date.

The document keeps one ledger per open video. It holds no pixels and no Qt: the document asks it what is
current and tells it what changed, and announces the changes itself. A result counts as current while the
annotations are those its run started from, identified by `key` (a digest of every annotated frame's mask):
undoing a correction makes the results from before it current again without propagating.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

import numpy as np

DigestOf = Callable[[int], "str | None"]
"""The session's digest of a frame's annotation (None: not annotated)."""


class ResultLedger:
    """Per frame: has a mask, the annotation key of its result, out of date, a preview, still being read."""

    def __init__(self, has_result: np.ndarray | None = None) -> None:
        self.has_result = np.zeros(0, bool) if has_result is None else has_result.astype(bool, copy=True)
        self.stale = np.zeros(len(self.has_result), bool)
        self.result_keys: list[bytes | None] = [None] * len(self.has_result)
        self.key = b""
        self._digests: dict[int, bytes] = {}
        self.before_preview: dict[int, bytes] = {}  # frame -> key of the current result a preview replaced
        self.previews: set[int] = set()  # frames whose result is a preview made while the engine adapts
        self.loading: set[int] = set()  # frames whose saved result has not been read back yet
        self.loading_uncertainty: dict[int, float] = {}  # saved values of results still being read

    @classmethod
    def reopened(cls, has_result: np.ndarray, annotated: list[int], digest_of: DigestOf,
                 stale: Iterable[int] = (), loading: Iterable[int] = (),
                 loading_uncertainty: Mapping[int, float] | None = None,
                 result_keys: Mapping[int, bytes] | None = None, judged_key: bytes | None = None,
                 out_of_date: Iterable[int] | None = None) -> ResultLedger:
        """The ledger of a video opened with saved work (see `Document.load` for what each argument means)."""
        ledger = cls(has_result)
        n = len(ledger.has_result)
        ledger.take_digests(annotated, digest_of)
        ledger.loading = {i for i in loading if 0 <= i < n}
        ledger.loading_uncertainty = dict(loading_uncertainty or {})
        unknown, keys = set(stale), result_keys or {}
        judged = ledger.key if judged_key is None else judged_key
        ledger.result_keys = [None if not (has or i in ledger.loading) or i in unknown else keys.get(i, judged)
                              for i, has in enumerate(ledger.has_result)]
        shown = set(out_of_date) if out_of_date is not None and judged_key in (None, ledger.key) else None
        marked = set(annotated)  # an annotation is never out of date
        ledger.stale = np.array([i not in marked and (has or i in ledger.loading)
                                 and (key != ledger.key if shown is None else key is None or i in shown)
                                 for i, (has, key) in enumerate(zip(ledger.has_result, ledger.result_keys))], bool)
        return ledger

    # ---- the annotations' key -----------------------------------------------------------------------
    def take_digests(self, frames: Iterable[int], digest_of: DigestOf) -> None:
        """Take the annotation digests of `frames` (annotated or not any more) and make the key of them all (the
        session counted each digest when the annotation was set: reading them back cost a decode and a hash per
        annotated frame, a second on reopening 300 at 1080p: QA pass 31)."""
        for frame in frames:
            digest = digest_of(frame)
            if digest is None:
                self._digests.pop(frame, None)
            else:
                self._digests[frame] = digest.encode()
        self.key = hashlib.blake2b(b"".join(f.to_bytes(8, "little") + d for f, d in sorted(self._digests.items())),
                                   digest_size=16).digest()

    def carry_to_key(self, old: bytes) -> None:
        """Results that were current under the annotations' `old` key stay current under the present one."""
        self.result_keys = [self.key if k == old else k for k in self.result_keys]
        self.before_preview = {f: self.key if k == old else k for f, k in self.before_preview.items()}

    # ---- out of date --------------------------------------------------------------------------------
    def outdated(self, frame: int) -> bool:
        """The frame has (or is reading) a result computed from other annotations than the present ones."""
        has = self.has_result[frame] or frame in self.loading
        return bool(has) and self.result_keys[frame] != self.key

    def mark_around(self, frame: int, annotated: set[int]) -> None:
        """Results on both sides of an edited frame, up to the next annotated frames, are out of date unless
        they were computed from the annotations as they are now (after an undo, say)."""
        self.stale[frame] = frame not in annotated and self.outdated(frame)
        for step in (-1, 1):
            i = frame + step
            while 0 <= i < len(self.stale) and i not in annotated:
                self.stale[i] = self.outdated(i)
                i += step

    def mark_current(self, frames: Iterable[int]) -> None:
        """These frames' results were made from the present annotations (imported as results)."""
        for frame in frames:
            self.result_keys[frame] = self.key
            self.stale[frame] = False

    def current_again(self, annotated: set[int]) -> None:
        """Results made from the annotations as they are now are not out of date (QA pass 77: an object painted
        after a run and removed left the run's frames red)."""
        for frame, key in enumerate(self.result_keys):
            if key == self.key and frame not in annotated:
                self.stale[frame] = False

    def is_preview(self, frame: int) -> bool:
        """The frame's out-of-date result is a preview made before the engine adapted to the video."""
        return frame in self.previews and bool(self.stale[frame]) and self.result_keys[frame] is None

    def replaced_current(self, annotated: set[int]) -> list[int]:
        """Takes out the frames whose preview replaced a result computed from the annotations as they are now:
        the document gives them that result back."""
        taken = [f for f, k in self.before_preview.items() if k == self.key and f not in annotated]
        for frame in taken:
            del self.before_preview[frame]
        return taken

    # ---- what propagation and loading tell ----------------------------------------------------------
    def note_result(self, frame: int, key: bytes, preview: bool, annotated: bool) -> bool:
        """A run stored a result computed from the annotations `key` identifies. Returns whether what previews
        replaced may be current again (a preview of a correction undone before its note came)."""
        self.has_result[frame] = True
        self.loading.discard(frame)
        if preview and self.result_keys[frame] is not None:
            self.before_preview.setdefault(frame, self.result_keys[frame])  # type: ignore[arg-type]
        elif not preview:
            self.before_preview.pop(frame, None)
        (self.previews.add if preview else self.previews.discard)(frame)
        self.result_keys[frame] = None if preview else key
        # an annotation made after the run stored this result, before its note came here, wins: never red
        self.stale[frame] = (preview or key != self.key) and not annotated  # (QA pass 17)
        return preview and key != self.key

    def note_entered(self, frame: int, run_key: bytes, digest_of: DigestOf) -> bytes:
        """Imported objects entered `frame`, now annotated. Returns the key the run's later results count under:
        its own results stay current, since the objects it added are part of what it propagates from then on."""
        old = self.key
        self.take_digests([frame], digest_of)
        if run_key == old:
            self.carry_to_key(old)
            run_key = self.key
        self.has_result[frame] = True
        self.stale[frame] = False
        return run_key

    def note_loaded(self, frame: int) -> None:
        self.has_result[frame] = True
        self.loading.discard(frame)

    def loading_done(self) -> None:
        """Every saved result has been read: a frame whose file was unreadable has no result to be stale."""
        for frame in self.loading:
            if not self.has_result[frame]:
                self.stale[frame], self.result_keys[frame] = False, None
        self.loading.clear()

    def with_loading_uncertainty(self, unc: np.ndarray) -> np.ndarray:
        """Per-frame uncertainty with the saved values of results still being read filled in."""
        for frame in self.loading:
            if frame in self.loading_uncertainty and not np.isfinite(unc[frame]):
                unc[frame] = self.loading_uncertainty[frame]
        return unc
