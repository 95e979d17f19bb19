from tests.simulator import RunningSimulator


def test_simulator_serves_over_http(sim: RunningSimulator) -> None:
    response = sim.portal.get("/portal/openapi.json")
    assert response.status_code == 200
