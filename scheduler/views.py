from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe for load balancers and process managers."""
    return JsonResponse({"status": "ok"})
