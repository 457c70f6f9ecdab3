"""The real `kedro serve` (a uvicorn subprocess on a free loopback port), called over
HTTP with httpx: its answers equal the inference pipeline's, bad requests get clear
4xx answers (never a 500), the token rule holds, and a burst of concurrent requests
is answered correctly."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import OFFICIAL_CLASS_NAMES
from tests.image_files import BROKEN, encoded, every_format, write_every_format
from tests.model_use.conftest import run_project
from tests.model_use.server import running_server, serve_once
from tests.pipelines.test_pipelines import latest, versions
from tests.processes import free_port

pytestmark = pytest.mark.slow

MiB = 1 << 20
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def compared(
    trained_project, test_image_folder, tmp_path_factory
) -> tuple[Path, pd.DataFrame]:
    """A folder of every format and 200 test images, with the pipeline's answers."""
    folder = tmp_path_factory.mktemp("compare")
    write_every_format(folder)
    for cls in OFFICIAL_CLASS_NAMES:
        for path in sorted((test_image_folder / cls).iterdir())[:20]:
            shutil.copy(path, folder / f"{cls}_{path.name}")
    run_project(
        trained_project,
        runtime_params={"inference": {"input_path": str(folder)}},
        pipeline_names=["inference"],
    )
    table = pd.read_csv(
        latest(
            trained_project / "data/smoke", "07_model_output/inference_predictions.csv"
        )
    )
    return folder, table.set_index("file")


@pytest.fixture(scope="module")
def server(trained_project, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with running_server(trained_project, log) as url:
        yield url


def model_version(project: Path) -> str:
    return versions(project / "data/smoke", "06_models/model.keras")[-1]


def assert_same_answer(
    answer: dict, expected: pd.Series, tolerance: float = 1e-4
) -> None:
    """The service's answer for a file is the pipeline's row for it (up to float
    rounding: the two predict in batches of different sizes)."""
    assert answer["confidence"] == pytest.approx(expected["confidence"], abs=tolerance)
    margin = expected["top_1_probability"] - expected["top_2_probability"]
    if margin > 2 * tolerance:
        assert answer["class"] == expected["predicted_class"]
    for i, entry in enumerate(answer["top_k"], start=1):
        assert entry["probability"] == pytest.approx(
            expected[f"top_{i}_probability"], abs=tolerance
        )
    assert (answer["width"], answer["height"]) == (
        expected["width"],
        expected["height"],
    )
    assert answer["model_version"] == expected["model_version"]


def post_files(url: str, paths: list[Path], **params) -> httpx.Response:
    files = [
        ("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths
    ]
    return httpx.post(f"{url}/v1/predict", files=files, params=params, timeout=60)


def test_health_model_card_and_docs(server, trained_project):
    health = httpx.get(f"{server}/v1/health").json()
    assert health == {
        "status": "ok",
        "model_loaded": True,
        "model_version": model_version(trained_project),
    }
    card = httpx.get(f"{server}/v1/model").json()
    assert card["class_names"] == OFFICIAL_CLASS_NAMES
    assert card["model_version"] == model_version(trained_project)
    assert card["input"]["dtype"] == "uint8"
    # The plan saved with the model, under its version (no budget: every epoch).
    assert card["training_plan"]["epochs"] == card["training_plan"]["configured_epochs"]
    assert httpx.get(f"{server}/docs").status_code == 200
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/v1/predict", "/v1/health", "/v1/model"} <= set(spec["paths"])


def test_predictions_equal_the_pipelines(server, compared):
    folder, expected = compared
    readable = [n for n in expected.index if n not in BROKEN]
    for start in range(0, len(readable), 16):
        names = readable[start : start + 16]
        response = post_files(server, [folder / n for n in names], top_k=3)
        assert response.status_code == 200, response.text
        answers = response.json()["predictions"]
        assert [a["file"] for a in answers] == [Path(n).name for n in names]
        for name, answer in zip(names, answers, strict=True):
            assert len(answer["top_k"]) == 3
            assert_same_answer(answer, expected.loc[name])
    # One image as the raw body.
    name = "rotated.jpg"
    response = httpx.post(
        f"{server}/v1/predict",
        content=(folder / name).read_bytes(),
        headers={"Content-Type": "image/jpeg"},
    )
    assert response.status_code == 200, response.text
    (answer,) = response.json()["predictions"]
    assert answer["file"] is None and (answer["width"], answer["height"]) == (32, 48)
    assert_same_answer(answer, expected.loc[name])
    # top_k is a query parameter; the default is inference.top_k.
    one = post_files(server, [folder / name], top_k=10).json()["predictions"][0]
    assert [e["class"] for e in one["top_k"]][:1] == [one["class"]]
    assert sorted(e["class"] for e in one["top_k"]) == sorted(OFFICIAL_CLASS_NAMES)


BAD_REQUESTS = {
    "json body": (
        {"json": {"image": "x"}},
        415,
        "Content-Type application/json is not accepted; send multipart/form-data",
    ),
    "no content type": ({"content": b"abc"}, 415, "Content-Type none is not accepted"),
    "empty raw body": (
        {"content": b"", "headers": {"Content-Type": "image/png"}},
        422,
        "The request body is empty",
    ),
    "wrong field": (
        {"files": [("image", ("a.png", every_format()["plain.bmp"]))]},
        422,
        "Unexpected form field(s) ['image']; send the images in the multipart field 'files'",
    ),
    "text field": (
        {
            "data": {"files": "not a file"},
            "files": [("files", ("a.bmp", every_format()["plain.bmp"]))],
        },
        422,
        "files[0] is a text field; expected a file upload",
    ),
    "corrupt image": (
        {
            "files": [
                ("files", ("ok.bmp", every_format()["plain.bmp"])),
                ("files", ("truncated.png", every_format()["truncated.png"])),
            ]
        },
        422,
        "files[1] 'truncated.png': corrupt or truncated PNG data",
    ),
    "not an image": (
        {"files": [("files", ("notes.jpg", b"hello"))]},
        422,
        "files[0] 'notes.jpg': not an image: no supported format",
    ),
    "unsupported format": (
        {"files": [("files", ("old.ppm", encoded(Image.new("RGB", (8, 8)), "PPM")))]},
        415,
        "files[0] 'old.ppm': PPM images are not supported; expected PNG, JPEG, BMP, GIF, WebP or TIFF",
    ),
    "too many images": (
        {
            "files": [
                ("files", (f"{i}.bmp", every_format()["plain.bmp"])) for i in range(65)
            ]
        },
        413,
        "65 images in one request; at most 64 (serving.max_images)",
    ),
    "too many bytes": (
        {"content": b"\0" * (10 * MiB + 1), "headers": {"Content-Type": "image/png"}},
        413,
        "at most 10,485,760 bytes (10 MiB, serving.max_request_bytes)",
    ),
    "top_k zero": (
        {
            "files": [("files", ("a.bmp", every_format()["plain.bmp"]))],
            "params": {"top_k": 0},
        },
        422,
        "greater than or equal to 1",
    ),
    "top_k above the classes": (
        {
            "files": [("files", ("a.bmp", every_format()["plain.bmp"]))],
            "params": {"top_k": 11},
        },
        422,
        "less than or equal to 10",
    ),
    "top_k not a number": (
        {
            "files": [("files", ("a.bmp", every_format()["plain.bmp"]))],
            "params": {"top_k": "three"},
        },
        422,
        "valid integer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_a_clear_4xx(server, case):
    kwargs, status, message = BAD_REQUESTS[case]
    response = httpx.post(f"{server}/v1/predict", timeout=60, **kwargs)
    assert response.status_code == status, response.text
    assert message in str(response.json()["detail"])


def test_an_image_above_the_pixel_limit_is_refused(server):
    big = encoded(Image.new("L", (7500, 7500)), "PNG")  # 56 megapixels, 70 kB
    response = httpx.post(
        f"{server}/v1/predict", files=[("files", ("big.png", big))], timeout=60
    )
    assert response.status_code == 422
    assert (
        "7500x7500 is 56.2 megapixels, above the limit of 50 megapixels"
        in response.text
    )


def test_a_streamed_body_above_the_limit_is_cut_off(server):
    def chunks():
        for _ in range(12):
            yield b"\0" * MiB

    try:
        response = httpx.post(
            f"{server}/v1/predict",
            content=chunks(),
            headers={"Content-Type": "image/png"},
            timeout=60,
        )
    except httpx.HTTPError:
        return  # the server may close the connection while we are still sending
    assert response.status_code == 413
    assert "over 10,485,760 bytes" in response.json()["detail"]


def test_other_methods_and_paths_are_not_500(server):
    assert httpx.get(f"{server}/v1/predict").status_code == 405
    assert httpx.get(f"{server}/v2/predict").status_code == 404


def test_a_burst_of_200_concurrent_requests_is_answered_correctly(server, compared):
    folder, expected = compared
    names = [n for n in expected.index if n.split("_")[0] in OFFICIAL_CLASS_NAMES]
    assert len(names) == 200

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=server, limits=limits, timeout=120
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v1/predict",
                        files=[("files", (n, (folder / n).read_bytes()))],
                    )
                    for n in names
                )
            )

    responses = asyncio.run(burst())
    for name, response in zip(names, responses, strict=True):
        assert response.status_code == 200, response.text
        (answer,) = response.json()["predictions"]
        assert answer["file"] == name  # its own answer, not another request's
        assert_same_answer(answer, expected.loc[name])


def test_the_token_rule(trained_project, tmp_path, compared):
    folder, expected = compared
    # An earlier training: its model and the configuration saved with it.
    saved = [
        trained_project / "data/smoke/06_models" / name
        for name in ("model.keras", "training_config.json")
    ]
    older = "2000-01-01T00.00.00.000Z"
    for folder_ in saved:
        shutil.copytree(folder_ / model_version(trained_project), folder_ / older)
    image = [("files", ("cat.jpg", (folder / "cat_0000.jpg").read_bytes()))]
    try:
        # With a token, a non-loopback address is allowed; --load-version is honoured.
        with running_server(
            trained_project,
            tmp_path / "token.log",
            "--host",
            "0.0.0.0",
            "--load-version",
            older,
            token=TOKEN,
        ) as url:
            for path in ("/v1/health", "/v1/model", "/docs"):
                response = httpx.get(f"{url}{path}")
                assert response.status_code == 401
                assert "Missing API token" in response.json()["detail"]
            wrong = httpx.post(
                f"{url}/v1/predict",
                files=image,
                headers={"Authorization": "Bearer nope"},
            )
            assert (wrong.status_code, wrong.json()["detail"]) == (
                401,
                "Invalid API token.",
            )
            good = {"Authorization": f"Bearer {TOKEN}"}
            ok = httpx.post(f"{url}/v1/predict", files=image, headers=good)
            assert ok.status_code == 200
            assert ok.json()["model_version"] == older
            assert (
                httpx.get(f"{url}/v1/health", headers=good).json()["model_version"]
                == older
            )
    finally:
        for folder_ in saved:
            shutil.rmtree(folder_ / older)


def test_a_non_loopback_address_without_a_token_is_refused(trained_project):
    port = free_port()
    result = serve_once(
        trained_project, "--host", "0.0.0.0", "--port", str(port), timeout=120
    )
    assert result.returncode != 0
    output = " ".join(result.output.split())
    assert "Refusing to listen on 0.0.0.0" in output
    assert "Set CIFAR10_API_TOKEN" in output and "--insecure" in output


def test_insecure_allows_a_non_loopback_address_without_a_token(
    trained_project, tmp_path
):
    with running_server(
        trained_project, tmp_path / "insecure.log", "--host", "0.0.0.0", "--insecure"
    ) as url:
        assert httpx.get(f"{url}/v1/health").status_code == 200
    assert (
        "without an API token (--insecure)" in (tmp_path / "insecure.log").read_text()
    )


def test_an_unknown_model_version_is_a_clear_error(trained_project):
    result = serve_once(
        trained_project,
        "--port",
        str(free_port()),
        "--load-version",
        "1999-nope",
        timeout=180,
    )
    assert result.returncode != 0
    assert "'trained_model' has no version '1999-nope'" in " ".join(
        result.output.split()
    )


def test_a_model_without_its_training_configuration_is_a_clear_error(trained_project):
    models = trained_project / "data/smoke/06_models/model.keras"
    alone = "2001-01-01T00.00.00.000Z"  # a model copied without training_config.json
    shutil.copytree(models / model_version(trained_project), models / alone)
    try:
        result = serve_once(
            trained_project,
            "--port",
            str(free_port()),
            "--load-version",
            alone,
            timeout=180,
        )
    finally:
        shutil.rmtree(models / alone)
    assert result.returncode != 0
    assert f"'training_config' has no version '{alone}'" in " ".join(
        result.output.split()
    )
