from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.embed_request import EmbedRequest
from ...models.embed_response import EmbedResponse
from ...models.problem import Problem
from typing import cast



def _get_kwargs(
    *,
    body: EmbedRequest,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/embed",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> EmbedResponse | Problem | None:
    if response.status_code == 200:
        response_200 = EmbedResponse.from_dict(response.json())



        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())



        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

    if response.status_code == 502:
        response_502 = Problem.from_dict(response.json())



        return response_502

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())



        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[EmbedResponse | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: EmbedRequest,

) -> Response[EmbedResponse | Problem]:
    """ Embed texts with the server's embedder (the model the index was built with).

    Args:
        body (EmbedRequest): Body of `POST /v1/embed`: texts to embed with the server's embedder,
            as
            the article-embedding script would (the same model as the index). Example:
            {'normalization': 'none', 'texts': ['how do I download a file from the command line']}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[EmbedResponse | Problem]
     """


    kwargs = _get_kwargs(
        body=body,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    body: EmbedRequest,

) -> EmbedResponse | Problem | None:
    """ Embed texts with the server's embedder (the model the index was built with).

    Args:
        body (EmbedRequest): Body of `POST /v1/embed`: texts to embed with the server's embedder,
            as
            the article-embedding script would (the same model as the index). Example:
            {'normalization': 'none', 'texts': ['how do I download a file from the command line']}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        EmbedResponse | Problem
     """


    return sync_detailed(
        client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: EmbedRequest,

) -> Response[EmbedResponse | Problem]:
    """ Embed texts with the server's embedder (the model the index was built with).

    Args:
        body (EmbedRequest): Body of `POST /v1/embed`: texts to embed with the server's embedder,
            as
            the article-embedding script would (the same model as the index). Example:
            {'normalization': 'none', 'texts': ['how do I download a file from the command line']}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[EmbedResponse | Problem]
     """


    kwargs = _get_kwargs(
        body=body,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    body: EmbedRequest,

) -> EmbedResponse | Problem | None:
    """ Embed texts with the server's embedder (the model the index was built with).

    Args:
        body (EmbedRequest): Body of `POST /v1/embed`: texts to embed with the server's embedder,
            as
            the article-embedding script would (the same model as the index). Example:
            {'normalization': 'none', 'texts': ['how do I download a file from the command line']}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        EmbedResponse | Problem
     """


    return (await asyncio_detailed(
        client=client,
body=body,

    )).parsed
