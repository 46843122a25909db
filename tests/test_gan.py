

def test_stop_mid_epoch_and_resume_match_an_uninterrupted_run(tmp_path):
    straight = _train(2, [], save=False)

    def stop_at_step_3(event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics) and event.step >= 3:
            trainer.stop()

    trainer = Trainer(TrainConfig("gan", epochs=2, batch_size=32, seed=2, threads=1,
                                  report_interval_s=0.0, run_dir=str(tmp_path / "r")),
                      stop_at_step_3, dataset=blobs_images(256, 64))
    assert trainer.run().step == 3
    resumed = Trainer(TrainConfig("gan"), dataset=blobs_images(256, 64),
                      resume_from=tmp_path / "r")
    assert resumed.run().step == 16
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
