from prefdata.cli import main

if __name__ == "__main__":  # backends that start processes (vLLM) re-import the main module in each child
    main()
