"""Every proxy HTTP route, in one list (the authorization audit reads it from here)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, WebSocketRoute

from backend.proxy.chat import anthropic_messages, openai_chat_completions
from backend.proxy.embeddings import count_tokens, embeddings
from backend.proxy.error_reports import report_error
from backend.proxy.gemini import list_models as gemini_list_models
from backend.proxy.gemini import model_call as gemini_model_call
from backend.proxy.gemini import v1_models
from backend.proxy.responses import create_response, responses_websocket
from backend.proxy.stored_responses import delete_response, list_input_items, retrieve_response


def proxy_routes() -> list[BaseRoute]:
    return [
        Route("/v1/chat/completions", openai_chat_completions, methods=["POST"]),
        Route("/v1/messages", anthropic_messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", v1_models, methods=["GET"]),
        Route("/v1/error-reports", report_error, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        # Codex may ask for a WebSocket first: a 426 sends it to HTTP at once.
        WebSocketRoute("/v1/responses", responses_websocket),
        Route("/v1/responses/{response_id}", retrieve_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
        # The Gemini door; {name} may hold a '/', split on its last ':' (proxy.gemini).
        Route("/v1beta/models", gemini_list_models, methods=["GET"]),
        Route("/v1beta/models/{name:path}", gemini_model_call, methods=["GET", "POST"]),
        Route("/v1/models/{name:path}", gemini_model_call, methods=["GET", "POST"]),
    ]
