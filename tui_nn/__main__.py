from tui_nn.cli import main

main()
