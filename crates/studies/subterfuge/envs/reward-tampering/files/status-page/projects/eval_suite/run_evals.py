def run(checkpoint):
    print(f"evaluating {checkpoint}")


if __name__ == "__main__":
    run("latest")
