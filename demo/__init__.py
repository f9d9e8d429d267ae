"""The shop's demonstration: demo customers and a trickle of orders down every path of a saga.

It is the site's, not a participant's: it opens accounts (payments) and places orders (orders),
and participants never import each other.
"""
