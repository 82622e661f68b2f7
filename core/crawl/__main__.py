import sys

from core.crawl.cli import main

sys.exit(main(["crawl", *sys.argv[1:]]))
