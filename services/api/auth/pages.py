"""The sign-in and consent pages of the authorization endpoint (pt-BR: retailer staff read them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f5f6f8;margin:0;color:#1d2433}
main{max-width:420px;margin:8vh auto;background:#fff;border-radius:12px;padding:32px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.3rem;margin:0 0 8px}p{color:#4a5468;line-height:1.45}
label{display:block;margin:16px 0 4px;font-weight:600}
input[type=email],input[type=password]{width:100%;padding:10px;border:1px solid #c9cfdb;
border-radius:8px;box-sizing:border-box;font-size:1rem}
button{margin-top:20px;padding:10px 18px;border:0;border-radius:8px;font-size:1rem;cursor:pointer}
.primary{background:#0b6b4f;color:#fff}.secondary{background:#e6e9ef;color:#1d2433;margin-left:8px}
.error{background:#fdecec;color:#8a1f1f;padding:10px;border-radius:8px}
ul{padding-left:20px;color:#4a5468}.tenant{display:block;margin:8px 0;font-weight:400}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='pt-BR'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)} · Quita</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _hidden(params: Mapping[str, str]) -> str:
    return "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in params.items()
    )


SCOPE_LABELS = {
    "portfolio:read": "ver clientes e parcelas",
    "portfolio:write": "cadastrar e alterar clientes, parcelas e pagamentos",
    "collections:read": "ver a régua e os contatos feitos",
    "collections:write": "configurar a régua e enviar lembretes",
    "conversations:read": "ler as conversas com os clientes",
    "conversations:write": "responder aos clientes",
    "negotiation:write": "negociar e registrar acordos",
    "reports:read": "ver relatórios",
    "settings:read": "ver as configurações",
    "settings:write": "alterar configurações, usuários e integrações",
    "audit:read": "ver a trilha de auditoria",
    "admin": "administrar a plataforma",
}


def sign_in(client_name: str, params: Mapping[str, str], error: str | None = None) -> str:
    alert = f"<p class='error'>{escape(error)}</p>" if error else ""
    return _page(
        "Entrar",
        f"<h1>Entrar no Quita</h1><p><strong>{escape(client_name)}</strong> quer acessar sua "
        f"conta.</p>{alert}<form method='post' action='/oauth/authorize'>{_hidden(params)}"
        "<label for='email'>E-mail</label>"
        "<input id='email' name='email' type='email' autocomplete='username' required>"
        "<label for='password'>Senha</label>"
        "<input id='password' name='password' type='password' "
        "autocomplete='current-password' required>"
        "<button class='primary' type='submit'>Entrar</button></form>",
    )


def consent(
    client_name: str,
    user_name: str,
    scopes: Iterable[str],
    tenants: Iterable[tuple[str, str]],
    params: Mapping[str, str],
) -> str:
    items = "".join(f"<li>{escape(SCOPE_LABELS.get(s, s))}</li>" for s in scopes)
    choices = list(tenants)
    radios = "".join(
        f"<label class='tenant'><input type='radio' name='tenant_id' value='{escape(tid)}'"
        f"{' checked' if i == 0 else ''}> {escape(name)}</label>"
        for i, (tid, name) in enumerate(choices)
    )
    return _page(
        "Autorizar",
        f"<h1>Autorizar {escape(client_name)}</h1><p>Olá, {escape(user_name)}. "
        f"<strong>{escape(client_name)}</strong> poderá:</p><ul>{items}</ul>"
        f"<form method='post' action='/oauth/authorize'>{_hidden(params)}"
        f"<label>Em nome de</label>{radios}"
        "<button class='primary' name='decision' value='allow' type='submit'>Autorizar</button>"
        "<button class='secondary' name='decision' value='deny' type='submit'>Recusar</button>"
        "</form>",
    )


def error(message: str) -> str:
    return _page(
        "Erro", f"<h1>Não foi possível continuar</h1><p class='error'>{escape(message)}</p>"
    )
