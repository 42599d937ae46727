"""Field inputs for the rewriter's tests: an HTML oracle, the html5lib-tests corpus, generators.

Everything here treats ``reqio_middleware`` as a black box: documents go in through
``rewrite_html`` / ``HTMLRewriter`` / ``explain``, and html5lib (a WHATWG tree builder) says
where the token landed.
"""
