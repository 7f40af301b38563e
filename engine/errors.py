"""Every error the engine raises on purpose, with a message fit for a user.

The tree::

    EngineError                  something the user can act on; ``str(e)`` is the message
    ├── ConfigError              a setting or path that cannot be used
    ├── IngestError              a document could not be read
    │   ├── EmptyDocumentError   the file holds no text at all
    │   ├── UnsupportedFormatError
    │   ├── PdfError             broken, encrypted, or a PDF the extractor gave up on
    │   └── ExtractionTimeout    the extractor exceeded its time or memory limit
    ├── ModelError               a model file that cannot be used
    │   ├── ModelFileError       not a GGUF, truncated, unreadable
    │   └── ChatTemplateError    its chat template tries to escape the sandbox or never ends
    ├── ContextOverflowError     the corpus does not fit the window (carries the numbers)
    ├── GenerationError          llama.cpp failed while reading or answering
    │   └── ServerLost           the inference server went away mid-request (issue 16)
    ├── StorageError             the SQLite store or the disk failed (disk full, locked)
    ├── DownloadError            getting a model from the Hugging Face Hub failed
    │   ├── OfflineError         the Hub cannot be reached
    │   ├── DiskFullError        not enough free disk space (checked first, or ENOSPC)
    │   └── ChecksumError        the file's SHA-256 is not the one the Hub published
    └── Cancelled                the user cancelled; not an error to show

``CancelToken`` (beside ``Cancelled``) is the flag a reader checks between batches and
tokens; setting it makes the reader raise ``Cancelled``.

Anything that is not an ``EngineError`` is a bug: the CLI prints a traceback, the GUI
shows a crash report. Third-party exceptions are wrapped at the boundary with
``raise ... from exc`` so the cause stays in the log.
"""

from __future__ import annotations

import threading


class EngineError(Exception):
    """Base of every error the engine raises on purpose; the message is for the user."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigError(EngineError):
    """A setting or path that cannot be used."""


class IngestError(EngineError):
    """A document could not be read."""

    def __init__(self, message: str, *, path: str | None = None, detail: str | None = None):
        super().__init__(message, detail=detail)
        self.path = path


class EmptyDocumentError(IngestError):
    """The file holds no text at all."""


class UnsupportedFormatError(IngestError):
    """Longread does not read this kind of file."""


class PdfError(IngestError):
    """A PDF that is broken, encrypted, or that the extractor could not read."""


class PasswordRequired(PdfError):
    """An encrypted PDF that needs its user password."""


class ExtractionTimeout(IngestError):
    """The extractor exceeded its time or memory limit."""


class ModelError(EngineError):
    """A model that cannot be used."""


class ModelFileError(ModelError):
    """A file that is not a usable GGUF model (not GGUF, truncated, unreadable)."""


class ChatTemplateError(ModelError):
    """A model whose chat template Longread will not run: it tries to reach Python's
    internals, or goes past the bounds on its work (engine/reading/chat_template.py)."""


class ContextOverflowError(EngineError):
    """The corpus plus question plus answer budget exceeds the context window."""

    def __init__(
        self,
        message: str,
        *,
        corpus_tokens: int,
        needed_tokens: int,
        n_ctx: int,
        max_ctx: int | None = None,
        waves_eta: str | None = None,
    ) -> None:
        super().__init__(message)
        self.corpus_tokens = corpus_tokens
        self.needed_tokens = needed_tokens
        self.n_ctx = n_ctx
        self.max_ctx = max_ctx
        # "about 12 min": reading it in waves instead, when that was estimated (issue 13
        # item 6): the CLI names the command with it, the window offers a button.
        self.waves_eta = waves_eta


class GenerationError(EngineError):
    """llama.cpp failed while reading the corpus or answering."""


class ServerLost(GenerationError):
    """The inference server went away mid-request (killed, network down): what was
    streamed so far is kept and the step is marked interrupted, as when this process dies."""


class StorageError(EngineError):
    """The store or the disk failed."""


class NoSuchSession(StorageError):
    """A session id that names no session (never created, or purged)."""

    def __init__(self, session_id: int) -> None:
        super().__init__(f"There is no session {session_id}.")
        self.session_id = session_id


class DownloadError(EngineError):
    """Getting a model from the Hugging Face Hub failed (engine/models/hub.py)."""


class OfflineError(DownloadError):
    """The Hub cannot be reached: no connection, or offline mode."""


class DiskFullError(DownloadError):
    """Not enough free disk space for a download."""


class ChecksumError(DownloadError):
    """A downloaded file's SHA-256 is not the one the Hub published; the file was removed."""


class Cancelled(EngineError):
    """The user cancelled. Not an error: callers show nothing for it."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class CancelToken:
    """A cancel flag shared between the thread that reads and the one that cancels."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def reset(self) -> None:
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        return self._event.is_set()
