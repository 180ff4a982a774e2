"""Security headers for the web pages: a strict Content-Security-Policy (no inline scripts or styles; htmx and the
stylesheet are served by the node itself), no framing, no referrer leaks. API and federation answers are untouched."""

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'")


class WebSecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.namespace == "web":
            response.setdefault("Content-Security-Policy", CSP)
            response.setdefault("Referrer-Policy", "same-origin")
            response.setdefault("X-Content-Type-Options", "nosniff")
            if request.user.is_authenticated:
                response.setdefault("Cache-Control", "private, no-store")
        return response
