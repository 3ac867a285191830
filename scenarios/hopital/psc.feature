# language: fr
@socle:PSC
Fonctionnalité: Authentification des professionnels par Pro Santé Connect (DPI)
  Le médecin d'un établissement se connecte au DPI par Pro Santé Connect (carte CPS ou e-CPS),
  et le DPI valide ce que Pro Santé Connect lui renvoie avant de faire confiance à l'identité.

  Contexte:
    Soit le professionnel "médecin hospitalier" est inscrit à Pro Santé Connect

  @exigence:PSC.01
  Scénario: Connexion par le navigateur (code d'autorisation)
    Quand le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa carte CPS
    Alors le logiciel affiche le professionnel connecté

  @exigence:PSC.01
  Scénario: Connexion sans navigateur par CIBA, validée sur l'e-CPS
    Quand le professionnel se connecte avec Pro Santé Connect par CIBA
    Alors le logiciel affiche le professionnel connecté

  @exigence:PSC/PROV.05
  Scénario: Le professionnel est identifié par son identifiant national et non par sub
    Quand le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa e-CPS
    Alors le logiciel identifie le professionnel par son identifiant national (SubjectNameID)

  @exigence:PSC.08
  Scénario: La connexion par le navigateur exige le niveau eIDAS substantiel
    Quand le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa carte CPS
    Alors la demande d'authentification exige le niveau "eidas1"

  @exigence:PSC.08
  Scénario: La connexion CIBA exige le niveau eIDAS substantiel
    Quand le professionnel se connecte avec Pro Santé Connect par CIBA
    Alors la demande d'authentification exige le niveau "eidas1"

  @exigence:PSC/PROV.01
  Scénario: La demande d'autorisation est protégée par PKCE
    Quand le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa carte CPS
    Alors la demande d'autorisation porte un défi PKCE S256
    Et l'échange du code présente le code_verifier correspondant

  @exigence:PSC/PROV.02
  Scénario: Un retour d'autorisation dont le state a été altéré est refusé
    Quand le navigateur revient vers le logiciel avec un state altéré
    Alors le logiciel refuse la connexion

  @exigence:PSC/PROV.03
  Scénario: Un jeton d'identité porteur d'un autre nonce est refusé
    Soit Pro Santé Connect renverra un jeton d'identité porteur d'un autre nonce
    Quand le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa carte CPS
    Alors le logiciel refuse la connexion

  @exigence:PSC/PROV.04
  Plan du scénario: Un jeton d'identité <defaut> est refusé
    Soit Pro Santé Connect renverra un jeton d'identité <defaut>
    Quand le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa carte CPS
    Alors le logiciel refuse la connexion

    Exemples:
      | defaut                       |
      | signé par une autre clé      |
      | expiré                       |
      | destiné à un autre client    |
      | de niveau inférieur à eidas1 |

  @exigence:PSC/PROV.06
  Scénario: Les jetons ne sont jamais écrits sur disque
    Quand le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa carte CPS
    Alors aucun jeton émis par Pro Santé Connect ne figure dans les fichiers du logiciel

  @exigence:PSC/PROV.07
  Scénario: La déconnexion ferme aussi la session Pro Santé Connect
    Soit le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Quand le professionnel se déconnecte du logiciel
    Alors Pro Santé Connect a reçu la fin de session
    Et le logiciel n'affiche plus de professionnel connecté

  @exigence:PSC/PROV.08
  Scénario: En CIBA, le logiciel ralentit sa scrutation quand Pro Santé Connect le demande
    Soit Pro Santé Connect demandera au logiciel de ralentir sa scrutation CIBA
    Quand le professionnel se connecte avec Pro Santé Connect par CIBA
    Alors le logiciel a espacé ses scrutations CIBA de l'intervalle demandé, ralentissement compris

  @exigence:PSC/PROV.09
  Scénario: Le jeton d'accès est renouvelé avant d'être présenté
    Soit Pro Santé Connect délivre des jetons d'accès valables 1 seconde
    Et le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Et le jeton d'accès a expiré
    Quand le logiciel utilise la session du professionnel
    Alors le jeton d'accès a été renouvelé avant d'être présenté

  @exigence:PSC.10 @exigence:INS/PSC.01
  Scénario: L'INSi est interrogé au nom du professionnel connecté par Pro Santé Connect
    Soit le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa carte CPS
    Et le patient "ADRUN" "ZOE" de sexe F né le 1975-12-31 à 63220 est enregistré dans le logiciel
    Quand le logiciel interroge l'INSi par les traits pour ce patient
    Alors chaque appel INSi porte l'authentification Pro Santé Connect du professionnel connecté
