"""The launcher under test: a project's own (matrix/launcher.yaml) or ccvm's
embedded ``ccvm vm`` (``embedded``), one ``Launcher`` declaration either way.

Everything ccvm knows about running it lives here: which launcher is under
test and where its program is (``resolve``), the private HOME it runs with
(``home``), its build step (``build``), how one boot is run and what it
returned (``boot``), and the time a cell's boots may take (``budget``).
``ccvm.checks.boot`` and ``ccvm.checks.host`` both build on it; neither
imports the other.
"""
