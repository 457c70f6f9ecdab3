"""The HTTP service: a FastAPI app around a model loaded once, at start.

``POST /v1/predict`` classifies one or more images (multipart field ``files``, or one
image as the raw body), ``GET /v1/health`` says the model is loaded, ``GET /v1/model``
returns the model card; OpenAPI docs at ``/docs``. Images go through
``preprocessing.prepare_image`` with the ``inference`` parameters, and the model
predicts as the inference pipeline does, so both give the same answer for a file.

Bad input never gives a 500: a request above the size limits answers 413, a missing
or wrong token 401, a body that is not an image upload 415, an image format that is
not supported 415, a corrupt or truncated image or a bad parameter 422; the message
names the file and the problem.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from cifar10_kedro.prediction import top_classes
from cifar10_kedro.preprocessing import (
    ImageError,
    PreparedImage,
    UnsupportedImageError,
    prepare_image,
)
from cifar10_kedro.serving.batching import MicroBatcher

MiB = 1 << 20
FIELD = "files"
RAW_TYPES = ("image/", "application/octet-stream")


@dataclass
class ServiceConfig:
    """What the app serves, and its limits."""

    predict: Callable[[np.ndarray], np.ndarray]  # uint8 images -> probabilities
    class_names: list[str]
    model_version: str
    model_card: dict[str, Any]
    resize: str
    max_pixels: int
    default_top_k: int
    max_request_bytes: int
    max_images: int
    max_batch_images: int
    decode_workers: int | None
    token: str | None = None
    token_env_var: str = "CIFAR10_API_TOKEN"


# ------------------------------------------------------------------ responses


class ClassProbability(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class")
    probability: float


class ImagePrediction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    file: str | None = Field(description="The upload's file name; null for a raw body.")
    class_: str = Field(alias="class", description="The most probable class.")
    confidence: float = Field(description="Its probability.")
    top_k: list[ClassProbability]
    width: int = Field(description="The image's width as displayed (EXIF-oriented).")
    height: int
    model_version: str


class PredictResponse(BaseModel):
    model_version: str
    predictions: list[ImagePrediction]


class Health(BaseModel):
    status: str
    model_loaded: bool
    model_version: str


# --------------------------------------------------------------- middlewares


async def _send_json(
    send: Any, status: int, detail: str, headers: dict | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": raw_headers}
    )
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Any) -> None:
    """Read the rest of a request body, so that the client reads our answer."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class RequestTooLargeError(Exception):
    pass


class TokenMiddleware:
    """Every request needs ``Authorization: Bearer <token>`` (pure ASGI, before the
    body is read)."""

    def __init__(self, app: Any, token: str, env_var: str) -> None:
        self.app, self._token, self._env_var = app, token.encode(), env_var

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(
            token.strip(), self._token
        ):
            return await self.app(scope, receive, send)
        detail = (
            "Invalid API token."
            if given
            else f"Missing API token: send 'Authorization: Bearer <token>' (the "
            f"server's {self._env_var})."
        )
        if _declared_length(scope) <= MiB:
            await _drain(receive)
        await _send_json(send, 401, detail, {"www-authenticate": "Bearer"})


def _declared_length(scope: Any) -> int:
    value = dict(scope["headers"]).get(b"content-length")
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


class BodyLimitMiddleware:
    """Answers 413 to a request body above ``max_bytes`` (pure ASGI)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self._max = app, max_bytes

    def _message(self, size: str) -> str:
        return (
            f"The request body is {size}; at most {self._max:,} bytes "
            f"({self._max / MiB:g} MiB, serving.max_request_bytes) are accepted."
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _declared_length(scope)
        if declared > self._max:
            # A moderately large body is read and dropped so that the client, still
            # sending, gets the answer; a huge one is cut off.
            if declared <= 4 * self._max:
                await _drain(receive)
            return await _send_json(send, 413, self._message(f"{declared:,} bytes"))
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise RequestTooLargeError(
                        self._message(f"over {self._max:,} bytes")
                    )
            return message

        await self.app(scope, limited, send)


# ----------------------------------------------------------------------- app

UNSUPPORTED, UNPROCESSABLE = 415, 422


async def _multipart_uploads(
    request: Request, max_images: int
) -> list[tuple[str | None, bytes]]:
    form = await request.form(max_files=10_000, max_fields=10_000)
    unknown = sorted({key for key in form if key != FIELD})
    if unknown:
        raise HTTPException(
            UNPROCESSABLE,
            f"Unexpected form field(s) {unknown}; send the images in the multipart "
            f"field '{FIELD}'.",
        )
    items = form.getlist(FIELD)
    if not items:
        raise HTTPException(
            UNPROCESSABLE,
            f"No images: send one or more files in the multipart field '{FIELD}'.",
        )
    if len(items) > max_images:
        raise HTTPException(
            413,
            f"{len(items)} images in one request; at most {max_images} "
            "(serving.max_images) are accepted.",
        )
    found = []
    for i, item in enumerate(items):
        if not isinstance(item, UploadFile):
            raise HTTPException(
                UNPROCESSABLE,
                f"{FIELD}[{i}] is a text field; expected a file upload "
                "(curl: -F files=@image.jpg).",
            )
        found.append((item.filename, await item.read()))
    return found


async def read_uploads(
    request: Request, max_images: int
) -> list[tuple[str | None, bytes]]:
    """Return (file name or None, bytes) of each image in the request."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        return await _multipart_uploads(request, max_images)
    if media.startswith(RAW_TYPES):
        body = await request.body()
        if not body:
            raise HTTPException(
                UNPROCESSABLE, "The request body is empty; expected an image."
            )
        return [(None, body)]
    raise HTTPException(
        UNSUPPORTED,
        f"Content-Type {media or 'none'} is not accepted; send multipart/form-data "
        f"with the images in the field '{FIELD}', or one image as the body with an "
        "image/* or application/octet-stream Content-Type.",
    )


def _prepare_all(
    payloads: list[bytes], config: ServiceConfig, pool: ThreadPoolExecutor
) -> list[PreparedImage | ImageError]:
    def one(data: bytes) -> PreparedImage | ImageError:
        try:
            return prepare_image(
                data, resize=config.resize, max_pixels=config.max_pixels
            )
        except ImageError as exc:
            return exc

    if len(payloads) == 1:
        return [one(payloads[0])]
    return list(pool.map(one, payloads))


def _check_prepared(items: list[tuple[str | None, bytes]], prepared: list[Any]) -> None:
    """Raise one 415 or 422 naming every image that could not be prepared."""
    failures = []
    for i, ((name, _), result) in enumerate(zip(items, prepared, strict=True)):
        if isinstance(result, ImageError):
            where = f"{FIELD}[{i}] '{name}'" if name is not None else "The body"
            unsupported = isinstance(result, UnsupportedImageError)
            failures.append((unsupported, f"{where}: {result.reason}."))
    if failures:
        # 415 only when every problem is an unsupported format.
        status = UNSUPPORTED if all(u for u, _ in failures) else UNPROCESSABLE
        raise HTTPException(status, " ".join(message for _, message in failures))


def _answer(
    items: list[tuple[str | None, bytes]],
    prepared: list[PreparedImage],
    probabilities: np.ndarray,
    config: ServiceConfig,
    top_k: int,
) -> PredictResponse:
    ranked = top_classes(probabilities, config.class_names, top_k)
    return PredictResponse(
        model_version=config.model_version,
        predictions=[
            ImagePrediction(
                file=name,
                class_=best[0][0],
                confidence=best[0][1],
                top_k=[ClassProbability(class_=c, probability=p) for c, p in best],
                width=image.width,
                height=image.height,
                model_version=config.model_version,
            )
            for (name, _), image, best in zip(items, prepared, ranked, strict=True)
        ],
    )


PREDICT_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        }
                    },
                    "required": [FIELD],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "401": {"description": "Missing or wrong API token."},
        "413": {"description": "Request above the size or image limits."},
        "415": {"description": "Not an image upload, or an unsupported format."},
        "422": {"description": "A corrupt image or a bad parameter."},
    },
}


def create_app(config: ServiceConfig) -> FastAPI:
    """Return the FastAPI app serving ``config.predict``."""
    batcher = MicroBatcher(config.predict, config.max_batch_images)
    decoder = ThreadPoolExecutor(
        max_workers=config.decode_workers or None, thread_name_prefix="decode"
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()
        decoder.shutdown(wait=False)

    app = FastAPI(
        title="CIFAR-10 classifier",
        version=config.model_version,
        description="Classifies images into the CIFAR-10 classes with the project's "
        "trained model (cifar10_kedro). Images of any size are prepared as the "
        f"inference pipeline prepares them (resize policy '{config.resize}').",
        lifespan=lifespan,
    )
    app.state.batcher = batcher

    @app.exception_handler(RequestTooLargeError)
    async def too_large(_: Request, exc: RequestTooLargeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.get("/v1/health", response_model=Health)
    async def health() -> Health:
        """The model is loaded and answering."""
        return Health(
            status="ok", model_loaded=True, model_version=config.model_version
        )

    @app.get("/v1/model")
    async def model_card() -> dict[str, Any]:
        """The model card: classes, input, preprocessing, version, test metrics."""
        return config.model_card

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        response_model_by_alias=True,
        openapi_extra=PREDICT_OPENAPI,
    )
    async def predict(
        request: Request,
        top_k: int = Query(
            config.default_top_k,
            ge=1,
            le=len(config.class_names),
            description="How many classes (with probabilities) per image.",
        ),
    ) -> PredictResponse:
        """Classify one or more images (PNG, JPEG, BMP, GIF, WebP or TIFF, any size)."""
        items = await read_uploads(request, config.max_images)
        prepared = await asyncio.get_running_loop().run_in_executor(
            None, _prepare_all, [data for _, data in items], config, decoder
        )
        _check_prepared(items, prepared)
        probabilities = await batcher.predict(np.stack([p.pixels for p in prepared]))
        return _answer(items, prepared, probabilities, config, top_k)

    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_request_bytes)
    if config.token:
        # Added last, so it runs first: nothing is read before the token is checked.
        app.add_middleware(
            TokenMiddleware, token=config.token, env_var=config.token_env_var
        )
    return app
