"""Reply intents: what a debtor's answer asks for, read from Portuguese as people type it.

The reply is first normalised (:mod:`~shared.domains.inbound.intent_text`: no accents, case,
emojis; chat abbreviations and one-edit typos of key words fixed) and the times it says are
found (:mod:`~shared.domains.inbound.intent_dates`); then phrase rules are matched.  Rules know
about negation: a rule is void when ``não``/``nunca``/``nem`` stands up to three words before it
in the same clause (``ainda não paguei``) or ``não`` closes it (``paguei não``); a ``já``,
``mas`` or ``sim`` in between stops the negation (``não já paguei`` is a missing comma).  Rules
that carry their own negation (``não sou eu``, ``não reconheço``) are not negatable.

Precedence when several intents match, and why:

1. ``opt_out`` — a request to stop is honoured whatever else the message says (LGPD, CDC).
2. ``wrong_person`` — a stranger must hear nothing more about someone else's debt.
3. ``dispute`` — contesting the debt has legal weight and needs a person.
4. ``already_paid`` — holding the régua is cheap and an operator confirms.
5. ``promise`` — a date beats the means to pay (``manda o boleto que pago sexta``).
6. ``second_copy``, 7. ``negotiate``.

Each rule is strong or weak: a weak one (``quero pagar``, ``qual o valor``, ``comprovante``
alone, ``não devo nada``) decides only when no strong rule matched, so ``quero quitar com
desconto`` is ``negotiate`` and ``já paguei, não devo nada`` is ``already_paid``.

Decisions on ambiguous replies:

* ``para`` is a stop only as the whole message (fillers aside) or as ``para de me mandar…``:
  elsewhere it is the preposition.  ``pare``/``parem`` are stops anywhere — except ``pare de
  me cobrar``, a complaint about the debt that an operator should read.
* ``pago`` alone (or ``já pago``) means "it is paid"; ``pago`` followed or preceded by a time
  (``pago sexta``, ``amanhã eu pago``, ``já pago amanhã``) or after ``eu``/``que``/``te`` is a
  promise.  ``posso/consigo/dá pra pagar`` are promises only with a date next to them.
* A message that is only a date (``dia 10``, ``amanhã``, ``semana que vem``) is a promise.
* Questions about the amount or how to pay (``qual o valor?``, ``como pago?``) are
  ``second_copy``: the answer is the current amount and the Pix code.
* Saying one cannot pay (``não consigo pagar``, ``tô desempregado``) is ``negotiate``.
* ``cancelar`` alone is a stop (what SMS lists teach people to send).

A promise's date is the first date said after its words, else the last said before them; the
rules for reading dates (and dropping past or far ones) are in ``intent_dates``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.domains.inbound.intent_dates import MAX_PROMISE_DAYS, WEEKDAY, WHEN, When, whens
from shared.domains.inbound.intent_text import normalise, words

__all__ = [
    "CONFIDENCE_MEDIA",
    "CONFIDENCE_PAYLOAD",
    "CONFIDENCE_PHRASE",
    "CONFIDENCE_WEAK",
    "MAX_PROMISE_DAYS",
    "PAYLOAD_AGENT",
    "PAYLOAD_DISPUTE",
    "PAYLOAD_NEGOTIATE",
    "PAYLOAD_NOT_ME",
    "PAYLOAD_PAID",
    "PAYLOAD_SECOND_COPY",
    "PAYLOAD_STOP",
    "PRECEDENCE",
    "RECEIPT_MEDIA",
    "Intent",
    "IntentKind",
    "classify",
    "classify_media",
]


class IntentKind(StrEnum):
    OPT_OUT = "opt_out"
    WRONG_PERSON = "wrong_person"
    DISPUTE = "dispute"
    ALREADY_PAID = "already_paid"
    PROMISE = "promise"
    SECOND_COPY = "second_copy"
    NEGOTIATE = "negotiate"
    OTHER = "other"


K = IntentKind
PRECEDENCE = (
    K.OPT_OUT,
    K.WRONG_PERSON,
    K.DISPUTE,
    K.ALREADY_PAID,
    K.PROMISE,
    K.SECOND_COPY,
    K.NEGOTIATE,
)

# Quick-reply button payloads we put on templates; they decide without reading the text.
PAYLOAD_PAID = "QUITA_PAID"
PAYLOAD_NEGOTIATE = "QUITA_NEGOTIATE"
PAYLOAD_SECOND_COPY = "QUITA_PIX"
PAYLOAD_STOP = "QUITA_STOP"
PAYLOAD_NOT_ME = "QUITA_NOT_ME"
PAYLOAD_DISPUTE = "QUITA_DISPUTE"
PAYLOAD_AGENT = "QUITA_AGENT"  # "talk to a person": the inbox
_PAYLOADS = {
    PAYLOAD_PAID: K.ALREADY_PAID,
    PAYLOAD_NEGOTIATE: K.NEGOTIATE,
    PAYLOAD_SECOND_COPY: K.SECOND_COPY,
    PAYLOAD_STOP: K.OPT_OUT,
    PAYLOAD_NOT_ME: K.WRONG_PERSON,
    PAYLOAD_DISPUTE: K.DISPUTE,
    PAYLOAD_AGENT: K.OTHER,
}

# Media that, sent without words, is a receipt (a photo or PDF of the payment).
RECEIPT_MEDIA = frozenset({"image", "document"})

CONFIDENCE_PAYLOAD = 1.0
CONFIDENCE_PHRASE = 0.9
CONFIDENCE_WEAK = 0.6
CONFIDENCE_MEDIA = 0.6
_TYPO_PENALTY = 0.1  # when a spelling correction was needed to match


@dataclass(frozen=True, slots=True)
class Intent:
    """What a reply asks for; ``matched`` is the payload, media kind or normalised phrase that
    decided (empty for ``other``)."""

    kind: IntentKind
    matched: str = ""
    confidence: float = 0.0
    promise_date: date | None = None


OTHER = Intent(K.OTHER)


def classify(
    text: str | None,
    *,
    payload: str | None = None,
    today: date,
    media: str | None = None,
) -> Intent:
    """The intent of a reply: a known button payload decides; else the text (a button's text
    when the payload is unknown); a wordless receipt (``media`` image/document) is a payment."""
    if payload is not None:
        kind = _PAYLOADS.get(payload.strip().upper())
        if kind is not None:
            return Intent(kind, payload.strip().upper(), CONFIDENCE_PAYLOAD)
    intent = _classify_text(text or "", today)
    if intent.kind is K.OTHER and media is not None:
        return classify_media(media)
    return intent


def classify_media(kind: str) -> Intent:
    """A message carrying only media: an image or document is taken as the payment receipt."""
    if kind.strip().lower() in RECEIPT_MEDIA:
        return Intent(K.ALREADY_PAID, f"media:{kind.strip().lower()}", CONFIDENCE_MEDIA)
    return OTHER


# --- rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: IntentKind
    pattern: str  # over normalised text, whole words
    negatable: bool
    weak: bool
    needs_when: bool  # counts only with a date or time cue next to it
    modal: bool  # "posso pagar": "agora" is not a date for it


def _rules(
    kind: IntentKind,
    *patterns: str,
    negatable: bool = True,
    weak: bool = False,
    needs_when: bool = False,
    modal: bool = False,
) -> list[_Rule]:
    return [_Rule(kind, p, negatable, weak, needs_when, modal) for p in patterns]


_SEND = r"mande|mandem|manda|mandar|envie|enviem|envia|enviar|ligue|liguem|liga|ligar"
_BOTHER = r"procure|procurem|perturbe|perturbem|incomode|incomodem|importune|chame"
_DEBT = (
    r"divida|cobranca|compra|debito|valor|conta|loja|empresa|contrato|financiamento|emprestimo"
    r"|parcela|boleto|fatura|credito|crediario|cartao|pendencia"
)
_PERSON = r"pessoa|ninguem|nome|senhor|senhora|moca|rapaz|cliente|fulano|fulana"
_PAYMENT_NOUN = r"pagamento|pix|transferencia|deposito|quitacao|ted|doc"
_PAID_ADJ = r"pago|paga|pagos|pagas|quitado|quitada|liquidado|liquidada|acertado|acertada"
_PAY_VERB = r"pagar|quitar|acertar|depositar|transferir|fazer o pix|fazer o pagamento"
_PAY_NOW = r"pago|quito|acerto|deposito|transfiro|faco o pix|faco o pagamento|mando o pix"
_HOW_MANY = r"[0-9]+|duas|tres|quatro|cinco|seis|sete|oito|nove|dez|doze|varias|mais"

_RULE_LIST: list[_Rule] = [
    *_rules(
        K.OPT_OUT,
        r"parem?(?! de (?:me )?cobra)",
        rf"(?:para|parar|pode parar|deixa|deixe|deixem) (?:de|com) (?:me |nos )?(?:{_SEND}"
        r"|mandando|enviando|ligando|encher|perturbar|incomodar|receber|isso|essas mensagens)",
        r"(?:quero|gostaria de|desejo) (?:parar|sair|me descadastrar|cancelar (?:as )?mensagens)",
        r"(?:quero |gostaria de )?(?:sair|me tirar|ser removido|ser removida) (?:da|dessa|desta)"
        r" lista",
        r"(?:me )?(?:tira|tire|tirar|remove|remova|remover|retire|exclua|excluir|apague|apagar)"
        r" (?:o |esse |este )?(?:meu )?(?:numero|contato|telefone|cadastro|dados)",
        r"me (?:tira|tire|tirar|remove|remova|remover|retire|exclua|excluir)"
        r" (?:da|dessa|desta|daqui|do|desse)",
        r"me (?:deixa|deixe|deixem) em paz",
        r"stop|unsubscribe|descadastr\w*|spam|bloquear|vou bloquear",
        r"chega de (?:me )?(?:mensagem|mensagens|cobranca|ligacao|ligacoes|mandar|encher|ligar)",
        r"cancela(?:r)? (?:as |essas |estas )?(?:mensagens|notificacoes|envios|inscricao)",
    ),
    *_rules(
        K.OPT_OUT,
        r"nao (?:quero|desejo) (?:mais )?(?:receber|ser (?:contatado|contatada|incomodado"
        r"|incomodada|perturbado|perturbada))",
        r"nao (?:quero|desejo) mais (?:mensagem|mensagens|contato|isso|nada|notificacoes)",
        rf"nao (?:me )?(?:{_SEND}) (?:mais|nada)|nao me (?:{_SEND}|{_BOTHER})",
        r"nao receber mais|parar de receber",
        r"nao tenho (?:mais )?interesse (?:em receber|nessas mensagens|nas mensagens|em contato)",
        negatable=False,
    ),
    *_rules(
        K.WRONG_PERSON,
        r"nao (?:sou|e) eu(?: mesmo| mesma)?",
        r"nao sou (?:o|a|esse|essa|este|esta) (?:pessoa|titular|cliente|responsavel|devedor"
        r"|devedora|senhor|senhora|moca|rapaz)",
        r"nao sou (?:o|a) (?!favor\b)[a-z]+|nao sou (?:cliente|titular|responsavel)",
        rf"nao conheco(?! (?:(?:essa|esta|esse|este|a|o|nenhuma|nenhum|tal) )?(?:{_DEBT}))",
        rf"desconheco (?:(?:essa|esta|esse|este|a|o|tal) )?(?:{_PERSON})",
        r"nao (?:tem|mora|existe|conheco) (?:ninguem|nenhum|nenhuma)",
        r"nao (?:me chamo|e meu nome|e comigo|e aqui)|meu nome nao e",
        r"nao e o (?:meu )?(?:numero|whatsap|telefone|celular|contato)",
        r"(?:esse|este|o) (?:numero|whatsap|telefone|celular) nao e (?:d[oa]|meu|mais)",
        r"nao sei quem (?:e|seja)|nunca ouvi falar (?:d[ea]ss[ae]|d[ea]st[ae]) (?:pessoa|nome"
        r"|senhor|senhora|moca|rapaz)",
        negatable=False,
    ),
    *_rules(
        K.WRONG_PERSON,
        r"(?:numero|whatsap|telefone|celular|contato) (?:(?:esta|ta|e) )?(?:errado|errada"
        r"|trocado|incorreto|equivocado)",
        r"(?:numero|telefone|whatsap) (?:de|do|da) outra pessoa|pessoa errada|mensagem errada",
        r"engano|enganou|enganaram|enganado|enganada|enganados",
        r"(?:mandou|mandaram|enviou|enviaram|ligou|ligaram|mandando|enviando) errado",
        r"(?:erraram|errou|errei) (?:o |de )?(?:numero|pessoa|contato|telefone)",
    ),
    *_rules(
        K.DISPUTE,
        r"nao (?:reconheco|reconhesso|reconhece|reconhecemos)",
        rf"nao conheco (?:(?:essa|esta|esse|este|a|o|nenhuma|nenhum|tal) )?(?:{_DEBT})",
        rf"(?:nao|nunca|nem) (?:fiz|realizei|efetuei|fizemos) (?:(?:essa|esta|nenhuma|nenhum"
        rf"|tal|esse|este) )?(?:{_DEBT}|cadastro|pedido)",
        r"(?:nao|nunca|nem) (?:comprei|comprou|compramos|adquiri|contratei|assinei|pedi"
        r"|solicitei|fui cliente|tive (?:conta|cartao|cadastro|crediario))",
        r"nao devo (?:isso|esse valor|essa divida|essa conta)|nao (?:estou|to) devendo",
        r"nao tenho (?:nenhuma |essa )?(?:divida|debito|pendencia)",
        r"nao (?:e|era) (?:minha|meu) (?:divida|compra|conta|debito|cpf)",
        r"(?:essa|esta|esse|este) (?:divida|compra|conta|cobranca|parcela|fatura|cpf|debito"
        r"|valor|contrato) nao e (?:meu|minha)",
        r"nao fui eu|que (?:divida|compra|cobranca|conta) e (?:essa|esta)",
        r"(?:algo|coisa|o) que (?:eu )?nao devo",
        r"(?:nao|nunca) recebi (?:o |a |meu |minha )?(?:produto|mercadoria|pedido|encomenda"
        r"|compra|movel|aparelho)",
        negatable=False,
    ),
    *_rules(
        K.DISPUTE,
        r"desconheco",
        r"golpe|golpista|golpistas|fraude|fraudulento|fraudulenta|estelionato|clonaram"
        r"|clonado|clonada",
        r"(?:usaram|usou|roubaram|pegaram) (?:o )?meu (?:nome|cpf|cartao|documento|dados)",
        r"(?:cobranca|valor|conta|juros) (?:(?:esta|ta|e|sao|estao|tao) )?(?:indevida|indevido"
        r"|errada|errado|abusiva|abusivo|abusivos|incorreta|incorreto|ilegal|injusta)",
        r"indevida|indevido|cobrando (?:errado|a mais|duas vezes|de novo|em dobro)",
        r"cobrado (?:a mais|duas vezes|em dobro)|cobranca (?:duplicada|em dobro)",
        r"(?:ja )?cancelei (?:a |o |essa |esse |meu |minha )?(?:compra|contrato|pedido|cartao"
        r"|conta|plano|servico|assinatura)",
        r"(?:compra|contrato|pedido|divida|conta|cobranca|cartao) (?:ja )?(?:foi )?cancelad[oa]",
        r"(?:divida|compra|cobranca|debito|conta) (?:nao existe|inexistente)",
        r"devolvi|devolvemos|defeito",
        r"(?:produto|mercadoria|pedido|encomenda|compra) (?:nunca|nao) (?:chegou|veio"
        r"|foi entregue)",
        r"procon|advogado|advogada|justica|processar|processo|juizado|reclame aqui"
        r"|prescrita|prescrito|prescreveu",
    ),
    *_rules(K.DISPUTE, r"nao devo (?:mais )?nada", negatable=False, weak=True),
    *_rules(
        K.ALREADY_PAID,
        r"paguei|pagou|quitei|quitamos|ja pagamos|transferi|depositei|liquidei|acertei"
        r"|regularizei",
        rf"(?:ja )?(?:foi|esta|ta|estao|tao|ficou|esta tudo|ta tudo|tudo) (?:{_PAID_ADJ})",
        r"ja (?:pago|paga|quitado|quitada|pagos)(?! (?:hoje|amanha|agora|logo|mais|a|de|dia|na"
        rf"|no|semana|depois|assim|quando|ate|em|ja|{WEEKDAY})\b)",
        rf"(?:fiz|efetuei|realizei|fizemos|efetuamos|mandei|enviei) (?:o |a |um |uma )?"
        rf"(?:{_PAYMENT_NOUN})",
        rf"(?:{_PAYMENT_NOUN}) (?:ja )?(?:foi )?(?:feito|realizado|efetuado|concluido|enviado"
        r"|compensado|aprovado)",
        r"(?:segue|mandei|enviei|anexo|anexei|em anexo|ta ai|esta ai|aqui esta|ai esta|aqui o)"
        r" (?:o |a |meu |minha )?(?:comprovante|recibo)",
        r"(?:ja )?(?:estou|to|esta|ta) em dia",
        r"acabei de (?:pagar|quitar|transferir|depositar|fazer o pix|fazer o pagamento)",
    ),
    *_rules(K.ALREADY_PAID, r"comprovante|recibo", weak=True),
    *_rules(
        K.PROMISE,
        rf"(?:vou|vamos|irei|iremos|pretendo|prometo|vou tentar|vou dar um jeito de) (?:{_PAY_VERB}"
        r"|resolver|regularizar|efetuar o pagamento|realizar o pagamento)",
        r"pagarei|pagaremos|quitarei|depositarei|acertarei",
        rf"(?<!\bonde )(?<!\bcomo )(?:eu|que|entao|ai|so|te|lhe|a gente) (?:{_PAY_NOW})",
        r"assim que (?:eu )?(?:receber|recebo|puder|der)",
    ),
    *_rules(
        K.PROMISE,
        rf"(?<!\bta )(?<!\bfoi )(?<!\bser )(?:{_PAY_NOW}|pagamos)",
        r"recebo|recebe|cai",
        needs_when=True,
    ),
    *_rules(
        K.PROMISE,
        rf"(?:posso|consigo|conseguiria|podemos|da pra|da para|tem como|quero|pretendia|devo)"
        rf" (?:{_PAY_VERB})|pode ser",
        needs_when=True,
        modal=True,
    ),
    *_rules(
        K.SECOND_COPY,
        r"(?:2|ii|dois|segunda) ?(?:a|o)? ?via|2(?:a|o)?via",
        r"boleto|boletos|pix|codigo|codigos|linha digitavel|qr ?code|qrcode|copia e cola|link"
        r"|fatura|(?:o|do|meu|no) carne|chave(?: pix| do pix)?",
        r"reenvia|reenvie|reenviar|(?:manda|mande|envia|envie) (?:de novo|novamente|outra vez)",
        negatable=False,
    ),
    *_rules(
        K.SECOND_COPY,
        r"qual (?:e )?(?:o )?valor|valor (?:atualizado|total|correto|certo|em aberto|devido)",
        r"(?:de )?quanto(?: (?:e|esta|ta|fica|ficou|da|deu|devo|eu devo|to devendo|estou devendo"
        r"|tenho que pagar|preciso pagar|que e|que devo))?|saldo|extrato",
        r"(?:como|onde) (?:eu )?(?:faco |faz |posso |consigo |devo )?(?:pra |para )?(?:pagar"
        r"|pago|quitar|quito)",
        r"formas? de pagamento|dados (?:para|pra) (?:pagamento|pagar|deposito|transferencia)",
        r"(?:quero|gostaria de|preciso) (?:pagar|quitar)",
        weak=True,
    ),
    *_rules(
        K.NEGOTIATE,
        r"parcelar|parcelamento|parcelado|parcelada|parcele|parcelo|parcelas? em",
        rf"em (?:{_HOW_MANY}) (?:vezes|parcelas|x|prestacoes)|[0-9]+ ?(?:x|vezes)",
        r"dividir|divide|dividido|dividida|divida em (?:[0-9]+|duas|tres|quatro)",
        r"(?:re)?negoci[a-z]*|desconto|descontos|acordo|acordos|proposta|propostas|abatimento"
        r"|abater|oferta|condicao|condicoes|facilitar|facilita|por mes|mensais",
        r"(?:tirar|tira|tire|retirar|sem|isentar|perdoar|reduzir|reduz|diminuir|diminui|baixar"
        r"|baixa|abaixar) (?:os |a |o |as )?(?:juros|multa|multas|encargos|valor)",
        r"(?:pagar|pago|pague|dar|dou) (?:uma |um |a )?(?:parte|metade|entrada|pouco"
        r"|menos|aos poucos)|aos poucos|entrada",
        r"(?:valor|parcela|divida|juros) (?:(?:ta|esta|e|ficou|fica|sao|estao|muito|mt|bem"
        r"|mais) )*(?:alto|alta|caro|cara|pesado|pesada)|valor menor",
    ),
    *_rules(
        K.NEGOTIATE,
        r"nao (?:consigo|consegui|vou conseguir|to conseguindo|estou conseguindo|posso"
        r"|tenho como|tenho condicoes de|da pra|da para|tem como) (?:pagar|quitar|arcar)",
        r"(?:nao tenho|sem) (?:dinheiro|grana|condicoes|condicao)",
        r"desempregado|desempregada|perdi (?:o |meu )?emprego|dificuldade|dificuldades",
        r"(?:to|estou|fiquei|ando) (?:apertado|apertada|endividado|endividada|quebrado|quebrada"
        r"|liso|lisa)",
        negatable=False,
    ),
]
_RULES = tuple(sorted(_RULE_LIST, key=lambda r: PRECEDENCE.index(r.kind)))
_COMPILED = tuple(re.compile(rf"(?<!\S)(?:{r.pattern})(?!\S)") for r in _RULES)
# A word a rule spells out is never "corrected" into another one ("parar" is not "pagar").
_RULE_WORDS = frozenset(
    re.findall(r"[a-z]{5,}", " ".join(r.pattern for r in _RULES) + WHEN.pattern)
)

_WHOLE_PHRASES = {
    **dict.fromkeys(
        [
            *words("para pare parar parem sair sai stop chega basta cancelar cancela remover"),
            *("pode parar", "nao quero mais", "para com isso"),
        ],
        K.OPT_OUT,
    ),
    **dict.fromkeys(["pago", "paga", "quitado", "quitada"], K.ALREADY_PAID),
    **dict.fromkeys(["nao e minha", "nao e meu"], K.DISPUTE),
}
# Words around an intent that carry none: greetings, politeness, laughter, clause marks.
_FILLERS = words(
    """
    . oi ola opa ei bom boa dia tarde noite por favor obrigado obrigada valeu ok okay beleza
    sim certo ta tudo bem moca moco senhor senhora amigo amiga ja agora k rs rsrs ha haha
    entao viu hein
    """
)
_NEGATORS = words("nao nunca nem jamais")
_CLAUSE_TURNS = words(". ja sim mas porem entao")  # a negation does not reach past these
# Words that may stand next to a date in a reply that is only a date ("pode ser dia 10?").
_GLUE = words("pode ser ate so somente apenas no na o a la pra de sem falta talvez")


def _classify_text(raw: str, today: date) -> Intent:
    norm = normalise(raw, keep=_RULE_WORDS)
    text = norm.text
    if not text:
        return OTHER
    penalty = _TYPO_PENALTY if norm.corrected else 0.0
    whole = _WHOLE_PHRASES.get(" ".join(t for t in text.split() if t not in _FILLERS))
    if whole is not None:
        return Intent(whole, text, round(CONFIDENCE_PHRASE - penalty, 2))
    times = whens(text, today)
    strong, weak = _matches(text, times)
    for kind in PRECEDENCE:
        if kind in strong:
            return _decided(kind, text, strong[kind], CONFIDENCE_PHRASE - penalty, times)
    alone = [w for w in times if w.kind in ("date", "vague")]
    if alone and _only_dates(text, alone):
        return Intent(K.PROMISE, text, round(CONFIDENCE_PHRASE - penalty, 2), alone[0].day)
    for kind in PRECEDENCE:
        if kind in weak:
            return _decided(kind, text, weak[kind], CONFIDENCE_WEAK - penalty, times)
    return OTHER


_Span = tuple[int, int]


def _matches(
    text: str, times: list[When]
) -> tuple[dict[IntentKind, _Span], dict[IntentKind, _Span]]:
    """Per intent, the first valid match of its first rule that has one, among the strong
    rules and among the weak ones."""
    strong: dict[IntentKind, _Span] = {}
    weak: dict[IntentKind, _Span] = {}
    for rule, pattern in zip(_RULES, _COMPILED, strict=True):
        found = weak if rule.weak else strong
        if rule.kind in found or rule.kind in strong:
            continue
        for m in pattern.finditer(text):
            if rule.negatable and _negated(text, *m.span()):
                continue
            if rule.needs_when and not _when_near(text, m.span(), times, modal=rule.modal):
                continue
            found[rule.kind] = m.span()
            break
    return strong, weak


def _decided(
    kind: IntentKind, text: str, span: _Span, confidence: float, times: list[When]
) -> Intent:
    day = _promise_date(span, times) if kind is K.PROMISE else None
    return Intent(kind, text[span[0] : span[1]], round(confidence, 2), day)


def _only_dates(text: str, times: list[When]) -> bool:
    rest = text
    for w in reversed(times):
        rest = rest[: w.start] + " " + rest[w.end :]
    return all(t in _FILLERS or t in _GLUE for t in rest.split())


def _negated(text: str, start: int, end: int) -> bool:
    """``não`` up to three words before (same clause, no ``já`` between), or closing it."""
    before = text[:start].split()[-3:]
    for word in reversed(before):
        if word in _CLAUSE_TURNS:
            break
        if word in _NEGATORS:
            return True
    after = text[end:].split()[:2]
    return bool(after) and after[0] == "nao" and (len(after) == 1 or after[1] in {".", "ainda"})


def _when_near(text: str, span: _Span, times: list[When], *, modal: bool) -> bool:
    """A date or time cue starts within three words after the match, or ends at most two words
    before it, in the same clause.  ``agora`` does not make a modal a promise."""
    start, end = span
    reach = _after_words(text, end, 3)
    for w in times:
        if modal and w.kind == "now":
            continue
        if end <= w.start <= reach and "." not in text[end : w.start].split():
            return True
        between = text[w.end : start].split()
        if w.end <= start and len(between) <= 2 and "." not in between:
            return True
    return False


def _after_words(text: str, pos: int, count: int) -> int:
    for _ in range(count):
        nxt = text.find(" ", pos + 1)
        if nxt == -1:
            return len(text)
        pos = nxt
    return pos + 1


def _promise_date(span: _Span, times: list[When]) -> date | None:
    """The date said after the promise words, else the one said before them; a bare cue
    (``assim que``, ``depois``) gives none."""
    said = [w for w in times if w.kind != "cue"]
    after = [w for w in said if w.start >= span[0]]
    if after:
        return after[0].day
    before = [w for w in said if w.end <= span[0]]
    return before[-1].day if before else None
