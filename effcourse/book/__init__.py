"""Book tooling, apart from the methods: executing chapters (papermill), the reproduction report, a Sphinx extension.

Command line: ``python -m effcourse.book.notebooks {execute,book,sync,check}``.
"""
