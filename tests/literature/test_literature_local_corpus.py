"""The local corpus: .bib, .md and .pdf files, BM25 ranking, and bad files skipped with a warning."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nanoresearch.errors import LiteratureError
from nanoresearch.literature import LocalCorpus
from nanoresearch.literature.local_corpus import display_name, match_expression

EXAMPLE_CORPUS = Path(__file__).parents[2] / "examples" / "corpus"

BIB = r"""
@article{lecun1998gradient,
  author = {LeCun, Yann and Bottou, L{\'e}on and Bengio, Yoshua and Haffner, Patrick},
  title = {Gradient-Based Learning Applied to Document Recognition},
  journal = {Proceedings of the {IEEE}},
  year = {1998},
  doi = {https://doi.org/10.1109/5.726791},
  abstract = {Convolutional networks trained end to end recognise handwritten digits better than other methods.}
}
@inproceedings{kingma2015adam,
  author = {Kingma, Diederik P. and Ba, Jimmy},
  title = {{Adam}: A Method for Stochastic Optimization},
  booktitle = {International Conference on Learning Representations},
  year = {2015},
  eprint = {1412.6980},
  archivePrefix = {arXiv},
}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_bibtex_entries_become_papers(tmp_path):
    write(tmp_path, "refs.bib", BIB)
    lecun, adam = LocalCorpus(tmp_path).papers
    assert lecun.key == "lecun1998gradient" and lecun.source == "local"
    assert lecun.authors == ["Yann LeCun", "Léon Bottou", "Yoshua Bengio", "Patrick Haffner"]  # LaTeX decoded
    assert lecun.venue == "Proceedings of the IEEE" and lecun.doi == "10.1109/5.726791"
    assert lecun.abstract.startswith("Convolutional networks") and lecun.entry_type == "article"
    assert adam.title == "Adam: A Method for Stochastic Optimization" and adam.arxiv_id == "1412.6980"
    assert adam.bibtex.startswith("@inproceedings{kingma2015adam,")


def test_markdown_with_front_matter_or_a_title_line(tmp_path):
    write(tmp_path, "notes/breiman.md", "---\ntitle: Random Forests\nauthors: Leo Breiman\nyear: 2001\n"
                                        "venue: Machine Learning\nkey: breiman2001random\n---\n\n"
                                        "Ensembles of decorrelated trees.\n\n## Why\n\nBagging plus random splits.\n")
    write(tmp_path, "svm.md", "# Support-Vector Networks\n\nMaximum-margin classifiers with kernels.\n")
    breiman, svm = LocalCorpus(tmp_path).papers
    assert (breiman.key, breiman.authors, breiman.year) == ("breiman2001random", ["Leo Breiman"], 2001)
    assert breiman.abstract == "Ensembles of decorrelated trees. Why Bagging plus random splits."
    assert svm.title == "Support-Vector Networks" and svm.abstract == "Maximum-margin classifiers with kernels."
    assert svm.key == "anonndsupport" and svm.authors == []


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    write(tmp_path, "good.bib", BIB)
    write(tmp_path, "broken.bib", "@article{broken, title = {Unclosed\n@book{fine, title = {A Book}, year = 2000}\n")
    write(tmp_path, "empty.bib", "% nothing here\n")
    write(tmp_path, "untitled.md", "just some words, no title\n")
    write(tmp_path, "bad-yaml.md", "---\ntitle: [unclosed\n---\nbody\n")
    write(tmp_path, "bad-year.md", "---\ntitle: A Paper\nyear: next spring\n---\n")
    (tmp_path / "binary.md").write_bytes(b"\xff\xfe\x00not utf-8")
    write(tmp_path, "not-a.pdf", "this is not a PDF")
    write(tmp_path, "README.md", "# This folder\n\nA description, not a paper.\n")
    write(tmp_path, ".ipynb_checkpoints/svm-checkpoint.md", "# A stale editor copy\n")

    corpus = LocalCorpus(tmp_path)
    assert sorted(p.key for p in corpus.papers) == ["fine", "kingma2015adam", "lecun1998gradient"]
    reasons = "\n".join(corpus.skipped)
    assert "broken.bib: entry at line 1 is not valid BibTeX" in reasons
    assert "empty.bib: no BibTeX entries in it" in reasons
    assert "untitled.md: no title: add front matter with `title:` or a `# Title` line" in reasons
    assert "bad-yaml.md: its front matter is not valid YAML" in reasons
    assert "bad-year.md: front matter field year: Input should be a valid integer" in reasons
    assert "binary.md: cannot read it" in reasons
    if shutil.which("pdftotext"):
        assert "not-a.pdf: pdftotext cannot read it" in reasons
    assert len(corpus.skipped) == 7
    assert all(str(tmp_path) in line for line in caplog.messages if "skipping" in line)
    assert "Traceback" not in caplog.text


def test_pdfs_are_skipped_with_a_warning_when_pdftotext_is_missing(tmp_path, monkeypatch):
    write(tmp_path, "paper.pdf", "%PDF-1.4 stand-in")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    corpus = LocalCorpus(tmp_path)
    assert corpus.papers == [] and "pdftotext is not installed" in corpus.skipped[0]


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LiteratureError, match="does not exist"):
        LocalCorpus(tmp_path / "nope")


PDF_WITH_METADATA = r"""\documentclass{article}
\usepackage[pdftitle={Dropout: A Simple Way to Prevent Neural Networks from Overfitting},
            pdfauthor={Nitish Srivastava, Geoffrey Hinton}]{hyperref}
\begin{document}
\noindent Journal of Machine Learning Research 15 (2014)\par
\section*{Abstract}
Dropout randomly drops units during training so that they cannot co-adapt.
\end{document}
"""
PDF_WITHOUT_METADATA = r"""\documentclass{article}
\pagestyle{empty}
\begin{document}
\noindent Random Search for Hyper-Parameter Optimization\par
\bigskip\noindent Random trials beat grid search for tuning hyperparameters at equal budget.
\end{document}
"""


@pytest.fixture(scope="module")
def pdf_folder(tmp_path_factory) -> Path:
    if shutil.which("pdflatex") is None or shutil.which("pdftotext") is None:
        pytest.skip("needs pdflatex to make a PDF and pdftotext (poppler-utils) to read it")
    folder = tmp_path_factory.mktemp("pdfs")
    for name, source in (("dropout", PDF_WITH_METADATA), ("random-search", PDF_WITHOUT_METADATA)):
        (folder / f"{name}.tex").write_text(source)
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=folder,
                       check=True, capture_output=True, timeout=120)
        for leftover in folder.glob(f"{name}.*"):
            if leftover.suffix != ".pdf":
                leftover.unlink()
    return folder


def test_pdfs_give_title_authors_and_first_page_text(pdf_folder):
    dropout, random_search = LocalCorpus(pdf_folder).papers
    assert dropout.title == "Dropout: A Simple Way to Prevent Neural Networks from Overfitting"
    assert dropout.authors == ["Nitish Srivastava", "Geoffrey Hinton"]
    assert dropout.abstract.startswith("Dropout randomly drops units during training")
    assert random_search.title == "Random Search for Hyper-Parameter Optimization"  # the first line
    assert random_search.abstract.startswith("Random trials beat grid search")
    assert LocalCorpus(pdf_folder).search("co-adapt units", 1) == [dropout]


def test_bm25_picks_the_relevant_paper_over_decoys(tmp_path):
    write(tmp_path, "target.md", "# Limited-memory BFGS for large-scale optimization\n\n"
                                 "A quasi-Newton method that stores a few vector pairs instead of the Hessian.\n")
    decoys = [
        ("Optimization of supply chains", "Linear programming for logistics at large scale."),
        ("Large language models", "Scaling transformers; memory use grows with context."),
        ("Newton's laws in classroom teaching", "Methods for teaching physics."),
        ("Stochastic gradient descent", "First-order optimization with noisy gradients."),
    ]
    for number, (title, text) in enumerate(decoys):
        write(tmp_path, f"decoy{number}.md", f"# {title}\n\n{text}\n")
    corpus = LocalCorpus(tmp_path)
    ranked = corpus.search("quasi-Newton BFGS method with limited memory", limit=3)
    assert ranked[0].title.startswith("Limited-memory BFGS") and len(ranked) == 3
    assert corpus.search("the of and", limit=3) == []  # only stopwords: nothing to rank by
    assert corpus.search("zebra", limit=3) == []


def test_query_words_cannot_inject_fts5_syntax():
    assert match_expression('adam" OR title:* NEAR(x') == '"adam" OR "title" OR "near" OR "x"'


def test_bibtex_names_become_display_names():
    assert display_name("LeCun, Yann") == "Yann LeCun"
    assert display_name("King, Jr., Martin Luther") == "Martin Luther King Jr."
    assert display_name("Yann LeCun") == "Yann LeCun"


def test_the_example_corpus_loads_cleanly_and_answers_the_example_tasks():
    corpus = LocalCorpus(EXAMPLE_CORPUS)
    assert corpus.skipped == [] and 15 <= len(corpus.papers) <= 25
    assert len({p.key for p in corpus.papers}) == len(corpus.papers)
    assert all(p.title and p.authors and p.year and p.abstract for p in corpus.papers)
    assert corpus.search("handwritten digit recognition", 2)[0].key in {"lecun1998gradient", "alpaydin1998optical"}
    assert corpus.search("breast cancer diagnosis", 1)[0].key == "street1993nuclear"
    assert corpus.search("limited memory BFGS", 1)[0].key == "liu1989limited"
    assert corpus.search("random search hyperparameter optimization", 1)[0].key == "bergstra2012random"
    assert corpus.search("dropout overfitting", 1)[0].key == "srivastava2014dropout"
