"""Prose that states a fact the fact sheet does not hold is removed: a dataset, a model family, a
technique, a size, a crash.

A small model writing about a logistic regression on the 1,797 UCI digits tends to write about a
CNN on MNIST with 60,000 images, because that is what most papers it read were about. The number
guard already drops typed numbers; this checker drops the named things. A sentence may name a
dataset, model family or technique only when the fact sheet names it, or when a paper the sentence cites
names it (related work describes other people's work), and may state a count of images, layers,
epochs... only when the sheet holds that count.

Matching is on normalised words: "LogisticRegression" on the sheet supports "logistic regression"
in prose, "CIFAR-10" matches "cifar10", a trailing plural "s" is ignored.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from nanoresearch.paper.guard import cited_keys, drop_sentences_with_reasons, prose_only

_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "twenty": 20, "fifty": 50, "hundred": 100, "thousand": 1000, "million": 1000000,
}  # fmt: skip
_COUNTED = (
    r"images?|examples?|samples?|instances?|data ?points?|records|layers?|neurons?|hidden units?|units|parameters?"
    r"|weights|epochs?|classes|features?|pixels?|iterations?|trees?|estimators?|filters?|channels?|heads?"
)
_COUNT = rf"\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?[kKM]?|{'|'.join(_NUMBER_WORDS)}"
_RANGE = rf"(?P<count>{_COUNT})(?:\s+(?:to|and|or|-|–)\s+(?P<count2>{_COUNT}))?"
# "60,000 images", "10,000 to 20,000 training samples", "three hidden layers": a count, then what it counts;
# "training samples from 10,000 to 20,000", "a training set of 60,000": what it counts, then the count.
_SIZE_PHRASES = (
    re.compile(rf"(?<![\w.,\\]){_RANGE}\s+(?:(?!of\b)[A-Za-z-]+\s+){{0,2}}?(?P<what>{_COUNTED})\b", re.I),
    re.compile(rf"\b(?P<what>{_COUNTED}|set|split)\s+(?:from|of)\s+{_RANGE}(?![\w,]|\.\d)", re.I),
)


# "Future work could try a random forest": naming what was not done, as a suggestion, states no fact.
_SUGGESTION = re.compile(r"\b(?:could|might|future work|next step|we plan|would be worth)\b", re.I)


class Entity(BaseModel):
    kind: str  # "dataset" or "model family"
    name: str
    aliases: list[str]  # matched as whole normalised words


def _entities(kind: str, table: dict[str, list[str]]) -> list[Entity]:
    return [Entity(kind=kind, name=name, aliases=[name, *aliases]) for name, aliases in table.items()]


ENTITIES = _entities(
    "dataset",
    {
        "MNIST": [], "Fashion-MNIST": [], "EMNIST": [], "KMNIST": [], "USPS": [], "CIFAR-10": ["CIFAR"],
        "CIFAR-100": [], "ImageNet": [], "Tiny ImageNet": [], "SVHN": [], "STL-10": [], "CelebA": [],
        "COCO": ["MS COCO"], "Pascal VOC": [], "Omniglot": [], "Caltech-101": [], "Iris": ["Iris dataset"],
        "IMDB": [], "SST-2": ["Stanford Sentiment Treebank"], "GLUE": [], "SQuAD": [], "WikiText": [],
        "Penn Treebank": [], "LibriSpeech": [],
    },
) + _entities(
    "model family",
    {
        "convolutional neural network": ["CNN", "ConvNet", "convolutional network", "convolutional"],
        "recurrent neural network": ["RNN", "recurrent network"], "LSTM": ["long short-term memory"],
        "GRU": [], "transformer": ["self-attention"], "vision transformer": ["ViT"], "BERT": [], "GPT": [],
        "ResNet": ["residual network"], "VGG": [], "AlexNet": [], "LeNet": [], "U-Net": [], "Inception": [],
        "multilayer perceptron": ["MLP", "multi-layer perceptron", "perceptron"],
        "neural network": ["neural net", "deep network", "deep neural network", "DNN"],
        "autoencoder": ["VAE", "variational autoencoder"], "GAN": ["generative adversarial network"],
        "diffusion model": [], "support vector machine": ["SVM", "SVC", "support vector"],
        "random forest": [], "decision tree": [], "gradient boosting": ["XGBoost", "LightGBM", "boosted trees"],
        "k-nearest neighbours": ["k-nearest neighbors", "kNN", "KNeighbors", "nearest neighbour", "nearest neighbor"],
        "naive Bayes": [], "logistic regression": [], "linear regression": [],
    },
) + _entities(
    # What a trial could have tried: the recorded 1.5B run's abstract said "a different kernel type was
    # also tested" of a run whose only edits raised max_iter.
    "technique",
    {
        "kernel": ["kernel trick", "kernel type", "RBF"], "dropout": [], "data augmentation": ["augmentation"],
        "batch normalization": ["batch norm", "batchnorm", "batch normalisation"], "early stopping": [],
        "learning rate schedule": ["learning rate decay", "cosine annealing", "warmup"],
        "ensemble": ["ensembling", "bagging"], "principal component analysis": ["PCA"],
        "cross-validation": ["cross validation", "k-fold"], "weight decay": [],
        "transfer learning": ["pre-trained", "pretrained", "fine-tuning", "fine-tuned"],
        "grid search": ["hyperparameter search"], "feature scaling": ["standardization", "StandardScaler"],
    },
)  # fmt: skip

# A trial that "crashed" or "raised an error": true only when one on the sheet failed.
_CRASH = re.compile(
    r"\b(?:crash\w*|segfault\w*|tracebacks?|errored|(?:runtime|run-time) errors?|out of memory)\b", re.I
)


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces: CamelCase split, punctuation and _ as spaces,
    letters and digits apart ("CIFAR10" -> "cifar 10"), so that names match however they are spelled."""
    text = re.sub(r"\\[A-Za-z]+", " ", text)  # LaTeX command names are not words of the prose
    text = re.sub(r"\b([A-Z]{2,})s\b", r"\1", text)  # "SVMs", "CNNs": an acronym's plural, not "SV Ms"
    text = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split()) + " "


def _mentions(alias: str, normalised_text: str) -> bool:
    words = normalise(alias).strip()
    return re.search(rf" {re.escape(words)}s? ", normalised_text) is not None


def named_entities(sentence: str) -> list[Entity]:
    """The datasets and model families a sentence names."""
    text = normalise(prose_only(sentence))  # not the cite keys: "krizhevsky2012imagenet" names no dataset
    found = {
        entity.name: [f" {normalise(a).strip()} " for a in entity.aliases if _mentions(a, text)] for entity in ENTITIES
    }
    longer = [alias for aliases in found.values() for alias in aliases]

    def only_inside_another(name: str) -> bool:  # "neural network" in "convolutional neural network"
        return all(any(alias in other and alias != other for other in longer) for alias in found[name])

    return [e for e in ENTITIES if found[e.name] and not only_inside_another(e.name)]


def _count(token: str) -> str:
    token = token.replace(",", "").lower()
    if token in _NUMBER_WORDS:
        return str(_NUMBER_WORDS[token])
    scale = {"k": 1000, "m": 1000000}.get(token[-1:], 1)
    return f"{float(token.rstrip('km')) * scale:g}"


def _name_parts(knob: str) -> list[str]:
    """'MAX_ITER' -> ['iter']: the words of a knob's name long enough to say what it counts."""
    return [part for part in normalise(knob).split() if len(part) >= 4]


def stated_sizes(sentence: str) -> list[tuple[str, str, list[str]]]:
    """(the phrase, what it counts, its counts) for each size the sentence states:
    "60,000 images" -> ("60,000 images", "images", ["60000"])."""
    prose = prose_only(sentence)
    return [(" ".join(m.group(0).split()), m["what"], [_count(c) for c in (m["count"], m["count2"]) if c])
            for pattern in _SIZE_PHRASES for m in pattern.finditer(prose)]  # fmt: skip


class FactContext(BaseModel):
    """What a sentence may state: the fact sheet's text and sizes, and each retrieved paper's text by key."""

    sheet: str
    sizes: set[str]  # counts of things the sheet states, as _count writes them: "1797", "360"
    knobs: dict[str, set[str]] = {}  # knob name -> its values: count what the name says ("MAX_ITER": iterations)
    papers: dict[str, str] = {}  # key -> title, abstract and verified claims
    crashed: bool = False  # some trial on the sheet failed to run

    def states_size(self, count: str, what: str) -> bool:
        if count in self.sizes:
            return True
        words = [w for w in normalise(what).split()]
        return any(count in values and any(w.startswith(part) for part in _name_parts(knob) for w in words)
                   for knob, values in self.knobs.items())  # fmt: skip

    def supported_text(self, sentence: str) -> str:
        cited = [self.papers.get(key, "") for key in cited_keys(sentence)]
        return normalise("\n".join([self.sheet, *cited]))


def unsupported_fact(sentence: str, context: FactContext) -> str | None:
    """Why the sentence states a fact the sheet (or a paper it cites) does not hold; None when it does not."""
    supported = context.supported_text(sentence)
    named = [] if _SUGGESTION.search(sentence) else named_entities(sentence)
    missing = [e for e in named if not any(_mentions(alias, supported) for alias in e.aliases)]
    if missing:
        where = "the fact sheet or the papers it cites" if cited_keys(sentence) else "the fact sheet"
        return f"names {', '.join(f'the {e.kind} {e.name}' for e in missing)}, which {where} does not"
    if not context.crashed and not cited_keys(sentence) and _CRASH.search(prose_only(sentence)):
        return "says something crashed or raised an error, but every trial on the fact sheet ran"
    for phrase, what, counts in stated_sizes(sentence):
        if not all(context.states_size(count, what) for count in counts):
            return f"states the size '{phrase}', which is not on the fact sheet"
    return None


def check_facts(text: str, context: FactContext) -> tuple[str, list[tuple[str, str]]]:
    """Drop sentences that state a fact not on the sheet; (text left, [(sentence, reason)])."""
    return drop_sentences_with_reasons(text, lambda sentence: unsupported_fact(sentence, context))
