"""Every error under /api/v1/ is application/problem+json, including those raised outside the API's own views."""

from __future__ import annotations

from http import HTTPStatus

API_PREFIX = "/api/v1/"
PROBLEM = "application/problem+json"


class ApiProblemMiddleware:
    """Rewrites a non-problem error answer under /api/v1/ (Django's 405, 400, 500 pages) as a problem document."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith(PROBLEM)
            and not request.path.startswith(API_PREFIX + "docs")
        ):
            from downstream.api import problem_response

            try:
                title = HTTPStatus(response.status_code).phrase
            except ValueError:
                title = "Error"
            problem = problem_response(response.status_code, "http-error", title, f"{title}.")
            for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID"):
                if header in response:
                    problem[header] = response[header]
            return problem
        return response
