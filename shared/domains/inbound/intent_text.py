"""A debtor's reply as the intent rules read it.

Case-folded; accents dropped (NFKD); emojis, symbols and quotes become spaces; clause
punctuation (``.,;:!?`` and new lines) becomes a ``.`` word, so a negation does not reach across
``não, já paguei``; dates keep their slashes (``10/12``, ``10.12`` and ``10-12`` alike).  Each
word then has its repeated letters squeezed (``paaaare`` → ``pare``; ``rr`` and ``ss`` stay, as
Portuguese spells them), chat abbreviations expanded (``vc``, ``pq``, ``n``/``ñ``, ``pfv``,
``msg``, ``num``…), and a word of five letters or more that is one edit (a swap of neighbours
included) from one of our key words, and is not itself a known word, is corrected to it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["MAX_CHARS", "Normalised", "normalise", "words"]

MAX_CHARS = 4096  # WhatsApp's text limit; anything longer is not a reply we read further


def words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


_ABBREVIATIONS = {
    "vc": "voce",
    "vcs": "voces",
    "q": "que",
    "pq": "porque",
    "n": "nao",
    "naum": "nao",
    "nope": "nao",
    "tb": "tambem",
    "tbm": "tambem",
    "blz": "beleza",
    "pf": "por favor",
    "pfv": "por favor",
    "pfvr": "por favor",
    "plz": "por favor",
    "pls": "por favor",
    "msg": "mensagem",
    "msgs": "mensagens",
    "hj": "hoje",
    "amn": "amanha",
    "amnh": "amanha",
    "dps": "depois",
    "td": "tudo",
    "mt": "muito",
    "mto": "muito",
    "qnd": "quando",
    "qdo": "quando",
    "qndo": "quando",
    "qto": "quanto",
    "qnto": "quanto",
    "qnt": "quanto",
    "cmg": "comigo",
    "obg": "obrigado",
    "obgd": "obrigado",
    "obgda": "obrigada",
    "vlw": "valeu",
    "eh": "e",
    "tah": "ta",
    "p": "pra",
    "d": "de",
    "agr": "agora",
    "ngm": "ninguem",
    "nd": "nada",
    "sab": "sabado",
    "seg": "segunda",
    "oq": "o que",
    "whats": "whatsap",  # "whatsapp" squeezed, as the rules spell it
    "zap": "whatsap",
    "wpp": "whatsap",
}
# "num" is "não" in speech and "número" in writing: the word after tells which.
_NUMBER_CONTEXT = frozenset({"errado", "errada", "trocado", "incorreto", "equivocado"})

# Key words a one-edit typo is corrected to (words of five letters or more only).
_CORRECTABLE = words(
    """
    paguei pagamento quitei quitado quitada depositei transferi comprovante
    parcelar parcelamento parcelado negociar negociacao renegociar desconto acordo proposta
    dividir entrada condicoes desempregado desempregada dificuldade juros
    boleto codigo segunda fatura linha digitavel
    reconheco desconheco comprei compra cobranca divida indevida golpe fraude procon
    advogado processar cancelei devolvi produto defeito prescreveu
    conheco numero errado errada trocado engano enganou pessoa
    mensagem mensagens receber mandar enviar descadastrar bloquear
    amanha depois semana sexta sabado domingo quarta quinta terca feira final
    quando consigo conseguir pagar quitar
    """
)
_CORRECTABLE_ORDER = tuple(sorted(_CORRECTABLE))  # deterministic whatever the hash seed
# Common words one edit away from a key word: never "corrected".
_KNOWN = words(
    """
    segundo segundos quinto quarto terco sexto cerca terra manha quanto quanta quantos quantas
    duvida duvidas parcela parcelas acordou acorda acordei pagas pagam pagou pagos pagando
    conhece conhecer conheci compras comprou comprar numeros pessoas recebe recebi recebo
    recebeu mande manda mando mandei mandou envie envia envio enviei enviou entrar entrou
    golpes codigos boletos propostas cobrar cobrou cobra linda lindo sexto feita feito feira
    finais depois semanas errados erradas quitar quite dividas trocada engana engane pagar
    deposito defeitos produtos fraudes quando consigo condicao
    """
)

_ACCENTS = re.compile(r"[\u0300-\u036f]")  # the combining marks NFKD splits off Latin letters
_DIGIT_SEPARATOR = re.compile(r"(?<=[0-9])[.\-](?=[0-9])")
_NUMBER_SIGN = re.compile(r"\b[nN]\s*[º°]")  # "nº"/"n°" before NFKD turns "º" into "o"
_CLAUSE = re.compile(r"[.,;:!?\n\r]+")
_NOISE = re.compile(r"[^\w\s/.]|_")
_LONE_SLASH = re.compile(r"(?<![0-9])/|/(?![0-9])")
_REPEATS = re.compile(r"([a-z])\1+")


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str  # words joined by single spaces; "." marks a clause boundary
    corrected: bool  # a typo was corrected on the way


def fold(text: str) -> str:
    """``text`` without case or accents (``"Não"`` → ``"nao"``)."""
    return _ACCENTS.sub("", unicodedata.normalize("NFKD", text.casefold()))


def normalise(raw: str, *, keep: frozenset[str] = frozenset()) -> Normalised:
    """``raw`` as the rules read it; words in ``keep`` are never "corrected" into others."""
    text = _NUMBER_SIGN.sub(" numero ", raw[:MAX_CHARS])
    text = fold(text)
    text = _DIGIT_SEPARATOR.sub("/", text)
    text = _CLAUSE.sub(" . ", text)
    text = _LONE_SLASH.sub(" ", _NOISE.sub(" ", text))
    tokens: list[str] = []
    corrected = False
    squeezed = [_squeeze(w) for w in text.split()]
    for i, word in enumerate(squeezed):
        if word == "num":
            following = squeezed[i + 1] if i + 1 < len(squeezed) else ""
            word = "numero" if following in _NUMBER_CONTEXT else "nao"
        word = _ABBREVIATIONS.get(word, word)
        fixed = _correct(word, keep)
        corrected |= fixed != word
        if fixed != "." or (tokens and tokens[-1] != "."):
            tokens.append(fixed)
    while tokens and tokens[-1] == ".":
        tokens.pop()
    return Normalised(" ".join(tokens), corrected)


def _squeeze(word: str) -> str:
    """Repeated letters once (``paaaare``), except ``rr``/``ss`` which Portuguese spells."""
    return _REPEATS.sub(lambda m: m.group(1) * (2 if m.group(1) in "rs" else 1), word)


@lru_cache(maxsize=16384)
def _correct(word: str, keep: frozenset[str]) -> str:
    """The key word ``word`` is one edit away from (same first letter), else ``word``."""
    if len(word) < 5 or not word.isalpha() or word in _CORRECTABLE or word in _KNOWN:
        return word
    if word in keep:
        return word
    for target in _CORRECTABLE_ORDER:
        if target[0] == word[0] and _one_edit_apart(word, target):
            return target
    return word


def _one_edit_apart(a: str, b: str) -> bool:
    """Levenshtein distance 1, counting a swap of neighbours (``pgauei``) as one edit."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]
