from tfsuite.cli import main

main()
