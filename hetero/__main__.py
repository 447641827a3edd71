from hetero.cli import main

main()
