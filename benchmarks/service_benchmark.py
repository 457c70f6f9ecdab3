"""HTTP service speed: latency of one-image requests and throughput with concurrent
clients sending batches, against the real `kedro serve` on a free loopback port.

Usage (from the project root, after a training run of the environment)::

    python benchmarks/service_benchmark.py --env smoke
    python benchmarks/service_benchmark.py --env smoke --requests 200 --seconds 10
    python benchmarks/service_benchmark.py --env smoke --engine onnx_int8  # after export

It starts `kedro serve --env ENV --log-level warning` (no access log) as a subprocess,
sends CIFAR-10 test JPEGs (from the archive CIFAR10_RAW_PATH names) as multipart
uploads with httpx from this process (on the same machine, so the clients share its
cores with the server), and stops the server by its process id. It prints and writes
to ``--output`` (JSON):

* p50, p99 and mean latency of ``--requests`` sequential one-image requests (one
  keep-alive connection, after a warm-up);
* images/s with ``--clients`` concurrent clients, each sending batches of ``--batch``
  images for ``--seconds`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_benchmark import machine  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def test_images(archive: Path, count: int) -> list[tuple[str, bytes]]:
    found = []
    with tarfile.open(archive) as tarred:
        for member in tarred:
            parts = member.name.split("/")
            if member.isfile() and len(parts) >= 3 and parts[-3] == "test":  # noqa: PLR2004
                found.append((parts[-1], tarred.extractfile(member).read()))
                if len(found) == count:
                    break
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(env: str | None, engine: str | None, log: Path):
    port = free_port()
    command = [sys.executable, "-m", "kedro", "serve", "--port", str(port)]
    command += ["--log-level", "warning"] + (["--env", env] if env else [])
    command += ["--engine", engine] if engine else []
    environment = {k: v for k, v in os.environ.items() if k != "CIFAR10_API_TOKEN"}
    with log.open("w") as out:
        process = subprocess.Popen(command, env=environment, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise SystemExit(f"kedro serve exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:  # noqa: PLR2004
                    break
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"kedro serve did not start:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            if process.poll() is None:
                os.kill(process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace)


def post(client: httpx.Client, images: list[tuple[str, bytes]]) -> int:
    files = [("files", (name, data, "image/jpeg")) for name, data in images]
    response = client.post("/v1/predict", files=files)
    if response.status_code != 200:  # noqa: PLR2004
        raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    return len(response.json()["predictions"])


def latency(
    url: str, images: list[tuple[str, bytes]], requests: int
) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(20):  # warm-up
            post(client, [images[i % len(images)]])
        seconds = []
        for i in range(requests):
            start = time.perf_counter()
            post(client, [images[i % len(images)]])
            seconds.append(time.perf_counter() - start)
    seconds.sort()
    return {
        "requests": requests,
        "p50_ms": round(1000 * statistics.median(seconds), 2),
        "p99_ms": round(
            1000 * seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))], 2
        ),
        "mean_ms": round(1000 * statistics.fmean(seconds), 2),
    }


def throughput(
    url: str, images: list[tuple[str, bytes]], clients: int, batch: int, duration: float
) -> dict[str, float]:
    done = [0] * clients
    stop_at = time.monotonic() + duration

    def client_loop(index: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            offset = index * batch
            while time.monotonic() < stop_at:
                chunk = [images[(offset + j) % len(images)] for j in range(batch)]
                done[index] += post(client, chunk)
                offset += clients * batch

    with httpx.Client(base_url=url, timeout=120) as warm:
        post(warm, images[:batch])
    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {
        "clients": clients,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "images": sum(done),
        "img_s": round(sum(done) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--env", default=None, help="configuration environment (default: base)"
    )
    parser.add_argument(
        "--engine",
        choices=["keras", "onnx_int8"],
        help="kedro serve --engine (default: serving.engine)",
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT / "benchmarks" / "results" / "service.json",
    )
    args = parser.parse_args(argv)
    archive = Path(os.environ.get("CIFAR10_RAW_PATH", ""))
    if not archive.is_file():
        parser.error("set CIFAR10_RAW_PATH to the CIFAR-10 JPEG archive")
    os.chdir(args.project)
    images = test_images(archive, 2000)
    results: dict[str, Any] = {
        "command": "python benchmarks/service_benchmark.py "
        + " ".join(argv or sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "engine": args.engine or "serving.engine",
    }
    with tempfile.TemporaryDirectory(prefix="service_benchmark_") as tmp:
        with server(args.env, args.engine, Path(tmp) / "server.log") as url:
            results["model_version"] = httpx.get(f"{url}/v1/health").json()[
                "model_version"
            ]
            results["one_image_latency"] = latency(url, images, args.requests)
            results["concurrent_batches"] = throughput(
                url, images, args.clients, args.batch, args.seconds
            )
    results["machine"]["load_average_after"] = list(os.getloadavg())
    one, many = results["one_image_latency"], results["concurrent_batches"]
    print(f"p50_ms: {one['p50_ms']}")
    print(f"p99_ms: {one['p99_ms']}")
    print(f"mean_ms: {one['mean_ms']}")
    print(
        f"img_s ({many['clients']} clients x batches of {many['batch']}): {many['img_s']:,.0f}"
    )
    print(f"machine: {json.dumps(results['machine'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.output}")
    return results


if __name__ == "__main__":
    main()
